/**
 * The small FAT disks of the guest contract (CIDATA, JOBDATA), made and read
 * without root or loop mounts: mkfs.vfat creates the file system in a file,
 * mtools copies files in and out.
 */

import { dirname, join } from "node:path";
import { CommandError, runChecked } from "../host/mod.ts";

/** mtools refuses images whose geometry it does not like without this. */
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: "1" };

/** Files by path relative to the disk's root ("user-data", "bin/tool"). */
export type DiskFiles = ReadonlyMap<string, Uint8Array>;

/**
 * Writes a FAT image at `path` holding `files`, labelled `label`. The image
 * is 1 MiB, or larger when the files need it (as the original's were).
 */
export async function writeFatImage(
  path: string,
  label: string,
  files: DiskFiles,
): Promise<void> {
  const bytes = [...files.values()].reduce((sum, data) => sum + data.length, 0);
  // Room for the FAT, directories and cluster slack, in KiB.
  const kib = Math.max(
    1024,
    Math.ceil((bytes * 1.25 + 256 * 1024) / 1024 / 64) * 64,
  );
  await Deno.remove(path).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await runChecked("mkfs.vfat", ["-C", "-n", label, path, String(kib)]);
  if (files.size === 0) return;
  const staging = await Deno.makeTempDir({
    dir: dirname(path),
    prefix: ".fat-",
  });
  try {
    for (const [name, data] of files) {
      await Deno.mkdir(dirname(join(staging, name)), { recursive: true });
      await Deno.writeFile(join(staging, name), data);
    }
    const entries = [...(await Array.fromAsync(Deno.readDir(staging)))].map((
      e,
    ) => join(staging, e.name));
    await runChecked("mcopy", ["-s", "-Q", "-i", path, ...entries, "::/"], {
      env: MTOOLS_ENV,
    });
  } finally {
    await Deno.remove(staging, { recursive: true });
  }
}

export interface ReadFatFileOptions {
  /** A larger file is refused (RangeError); nothing beyond it is read. */
  readonly maxBytes?: number;
  /** Milliseconds before mcopy is stopped and the read fails (TimedOut). */
  readonly timeoutMs?: number;
}

/** What mcopy may say on stderr before the rest is dropped. */
const MAX_STDERR = 64 * 1024;

/**
 * The contents of `name` on the FAT image, or undefined when it is not there.
 *
 * A JOBDATA disk comes back from the guest, which may have rewritten it
 * whole: give `maxBytes` and `timeoutMs` for those, so that a file that
 * claims gigabytes or a file system that sends mcopy in circles costs
 * neither the host's memory nor a stuck run.
 *
 * @throws {RangeError} for a file larger than `maxBytes`
 * @throws {Deno.errors.TimedOut} when mcopy takes longer than `timeoutMs`
 * @throws {CommandError} when mcopy fails for another reason
 */
export async function readFatFile(
  image: string,
  name: string,
  options: ReadFatFileOptions = {},
): Promise<Uint8Array | undefined> {
  const args = ["-n", "-i", image, `::/${name}`, "-"];
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("mcopy", {
      args,
      env: MTOOLS_ENV,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new CommandError(
      "mcopy",
      args,
      undefined,
      "not installed (run scripts/setup.sh)",
    );
  }
  let failure: Error | undefined;
  const stop = (error: Error) => {
    failure ??= error;
    try {
      child.kill("SIGKILL");
    } catch {
      // It has exited already.
    }
  };
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(
    () =>
      stop(
        new Deno.errors.TimedOut(
          `mcopy did not read "${name}" from ${image} within ${options.timeoutMs} ms`,
        ),
      ),
    options.timeoutMs,
  );
  const maxBytes = options.maxBytes ?? Infinity;
  try {
    const [stdout, stderr, status] = await Promise.all([
      readAtMost(child.stdout, maxBytes, () =>
        stop(
          new RangeError(
            `File "${name}" on ${image} is larger than ${maxBytes} bytes`,
          ),
        )),
      readAtMost(child.stderr, MAX_STDERR),
      child.status,
    ]);
    if (failure) throw failure;
    const text = new TextDecoder().decode(stderr);
    if (status.code === 0) return stdout;
    if (/not found/i.test(text)) return undefined;
    throw new CommandError("mcopy", args, status.code, text);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The first `max` bytes of `stream`. When there are more, `onOver` is
 * called once and the stream is cancelled (stdout), or drained and dropped
 * (without `onOver`: stderr, so that the program never blocks on it).
 */
async function readAtMost(
  stream: ReadableStream<Uint8Array>,
  max: number,
  onOver?: () => void,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of stream) {
    if (length + chunk.length > max) {
      if (onOver) {
        onOver();
        break; // cancels the stream
      }
      chunks.push(chunk.subarray(0, max - length));
      length = max;
      continue;
    }
    chunks.push(chunk);
    length += chunk.length;
  }
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

/** The label mkfs.vfat wrote, as blkid in the guest will see it. */
export async function readFatLabel(image: string): Promise<string> {
  const text = await runChecked("mlabel", ["-s", "-i", image, "::"], {
    env: MTOOLS_ENV,
  });
  return text.replace(/^\s*Volume label is\s*/, "").trim();
}
