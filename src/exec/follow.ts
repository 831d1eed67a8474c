/**
 * Streams a file that another process (qemu) appends to, until told to stop,
 * and then reads what is left: nothing written before the stop is lost.
 */

export interface FollowOptions {
  /** Milliseconds between reads at the end of the file; 50 by default. */
  readonly interval?: number;
}

export async function followFile(
  path: string,
  write: (chunk: Uint8Array) => void | Promise<void>,
  stop: AbortSignal,
  options: FollowOptions = {},
): Promise<void> {
  const buffer = new Uint8Array(64 * 1024);
  let file: Deno.FsFile | undefined;
  try {
    for (;;) {
      // Read to the end once more after a stop, for what came just before.
      const last = stop.aborted;
      file ??= await Deno.open(path, { read: true }).catch((error) => {
        if (error instanceof Deno.errors.NotFound) return undefined;
        throw error;
      });
      if (file) {
        for (;;) {
          const read = await file.read(buffer);
          if (read === null || read === 0) break;
          await write(buffer.slice(0, read));
        }
      }
      if (last) return;
      await pause(options.interval ?? 50, stop);
    }
  } finally {
    file?.close();
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
