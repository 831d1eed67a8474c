/**
 * Writing one upload into a store: to a temporary name in the target's
 * folder, the body streamed chunk by chunk (a 5 GiB upload is never held in
 * memory), each chunk taken from the run's quota before it is written, then
 * synced and renamed over the target, and the folder synced. An upload that
 * fails, is cut off or runs over the quota removes its temporary file and
 * gives back what it took: nothing is left, and the quota is as before.
 */

import { dirname, join } from "node:path";
import { fsync, isWithin } from "../host/mod.ts";
import { TEMPORARY } from "./request.ts";
import type { Quota } from "./runs.ts";

export type UploadResult =
  | { readonly kind: "written"; readonly bytes: number }
  | {
    readonly kind: "over-quota" | "cut" | "conflict";
    readonly message: string;
  };

/**
 * The temporary name of an upload in progress: uploads may not use such a
 * name themselves (request.ts), so that the sweep after a crash removes
 * only what uploads left.
 */
function temporaryName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `.forrest-upload-${
    Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

export interface UploadOptions {
  /** The store's folder. */
  readonly root: string;
  /** The file's path below it, checked segments (request.ts). */
  readonly segments: readonly string[];
  readonly body: ReadableStream<Uint8Array> | null;
  readonly quota: Quota;
  /**
   * The Content-Length, when the client sent one: it is taken from the
   * quota before a byte is read (refused when more than is left), so an
   * upload that fits when it starts is not starved by concurrent ones.
   */
  readonly declared: number | undefined;
  /** A read that brings nothing for this long cuts the upload off; ms. */
  readonly idleTimeout: number;
}

/**
 * Writes the body to `root/segments…`, making folders as needed, never
 * outside `root`: a folder of the path that resolves elsewhere (a symbolic
 * link someone else put there) is refused.
 */
export async function writeUpload(
  options: UploadOptions,
): Promise<UploadResult> {
  const { root, quota, declared } = options;
  if (declared !== undefined && !quota.take(declared)) {
    return overQuota(quota);
  }
  // What this upload holds of the quota; given back when it fails.
  let taken = declared ?? 0;
  const target = join(root, ...options.segments);
  const folder = dirname(target);
  const refuse = (result: UploadResult) => {
    quota.give(taken);
    return result;
  };
  try {
    await Deno.mkdir(folder, { recursive: true });
  } catch (error) {
    if (
      error instanceof Deno.errors.AlreadyExists ||
      error instanceof Deno.errors.NotADirectory
    ) {
      return refuse({
        kind: "conflict",
        message: "a folder of the path is a file in the store",
      });
    }
    quota.give(taken);
    throw error;
  }
  if (!isWithin(await Deno.realPath(folder), await Deno.realPath(root))) {
    return refuse({
      kind: "conflict",
      message: "a folder of the path leads out of the store",
    });
  }
  const temporary = join(folder, temporaryName());
  const file = await Deno.open(temporary, {
    write: true,
    createNew: true,
    mode: 0o644,
  }).catch((error) => {
    quota.give(taken);
    throw error;
  });
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    file.close();
  };
  const fail = async (result: UploadResult): Promise<UploadResult> => {
    try {
      close();
    } catch { /* closing is all that is left to do with it */ }
    await Deno.remove(temporary).catch(() => {});
    quota.give(taken);
    taken = 0;
    return result;
  };
  try {
    let received = 0;
    if (options.body) {
      const reader = options.body.getReader();
      while (true) {
        let chunk: ReadableStreamReadResult<Uint8Array> | undefined;
        try {
          chunk = await readWithin(reader, options.idleTimeout);
        } catch (error) {
          return await fail({
            kind: "cut",
            message: `the upload was cut off: ${
              error instanceof Error ? error.message : String(error)
            }`,
          });
        }
        if (chunk === undefined) {
          await reader.cancel().catch(() => {});
          return await fail({
            kind: "cut",
            message: `the upload was cut off: nothing came for ${
              options.idleTimeout / 1000
            } s`,
          });
        }
        if (chunk.done) break;
        received += chunk.value.length;
        // Beyond what was declared (or with nothing declared): take more.
        if (received > taken) {
          if (!quota.take(received - taken)) {
            await reader.cancel().catch(() => {});
            return await fail(overQuota(quota));
          }
          taken = received;
        }
        let written = 0;
        while (written < chunk.value.length) {
          written += await file.write(chunk.value.subarray(written));
        }
      }
    }
    await file.syncData();
    close();
    try {
      await Deno.rename(temporary, target);
    } catch (error) {
      if (error instanceof Deno.errors.IsADirectory) {
        return await fail({
          kind: "conflict",
          message: "the path is a folder in the store",
        });
      }
      throw error;
    }
    // Stored: what was declared but not sent goes back; the rest stays
    // taken, whatever happens now.
    quota.give(taken - received);
    taken = 0;
    await fsync(folder);
    return { kind: "written", bytes: received };
  } catch (error) {
    await fail({ kind: "cut", message: "" });
    throw error;
  }
}

/** The next chunk, or undefined when none came within `ms`. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  ms: number,
): Promise<ReadableStreamReadResult<Uint8Array> | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      reader.read(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function overQuota(quota: Quota): UploadResult {
  return {
    kind: "over-quota",
    message:
      `the run's quota for this store is used up (${quota.remaining} bytes left)`,
  };
}

/**
 * Removes the temporary files of uploads that a crash cut off, below
 * `root`; resolves to how many there were. Only while no upload runs.
 */
export async function sweepUploads(root: string): Promise<number> {
  let removed = 0;
  const walk = async (dir: string): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return;
      throw error;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else if (entry.isFile && TEMPORARY.test(entry.name)) {
        await Deno.remove(path);
        removed++;
      }
    }
  };
  await walk(root);
  return removed;
}
