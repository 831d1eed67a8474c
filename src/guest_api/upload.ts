/**
 * Writing one upload into a store: to a temporary name in the target's
 * folder, the body streamed chunk by chunk (a 5 GiB upload is never held in
 * memory), each chunk taken from the run's quota before it is written, then
 * synced and renamed over the target, and the folder synced. An upload that
 * fails, is cut off or runs over the quota removes its temporary file and
 * gives back what it took: nothing is left, and the quota is as before.
 */

import { dirname, join } from "node:path";
import { fsync } from "../host/mod.ts";
import type { Quota } from "./runs.ts";

export type UploadResult =
  | { readonly kind: "written"; readonly bytes: number }
  | {
    readonly kind: "over-quota" | "cut" | "conflict";
    readonly message: string;
  };

const TEMPORARY = /^\.forrest-upload-[0-9a-f]{16}$/;

/** A name no upload can have: it starts with "." and holds random hex. */
function temporaryName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `.forrest-upload-${
    Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
  }`;
}

/**
 * Writes `body` to `root/segments…`, making folders as needed.
 *
 * @param declared the Content-Length, when the client sent one: more than
 *   the quota has left is refused before a byte is read
 */
export async function writeUpload(
  root: string,
  segments: readonly string[],
  body: ReadableStream<Uint8Array> | null,
  quota: Quota,
  declared: number | undefined,
): Promise<UploadResult> {
  if (declared !== undefined && declared > quota.remaining) {
    return overQuota(quota);
  }
  const target = join(root, ...segments);
  try {
    await Deno.mkdir(dirname(target), { recursive: true });
  } catch (error) {
    if (
      error instanceof Deno.errors.AlreadyExists ||
      error instanceof Deno.errors.NotADirectory
    ) {
      return {
        kind: "conflict",
        message: "a folder of the path is a file in the store",
      };
    }
    throw error;
  }
  const temporary = join(dirname(target), temporaryName());
  const file = await Deno.open(temporary, {
    write: true,
    createNew: true,
    mode: 0o644,
  });
  let taken = 0;
  let closed = false;
  const fail = async (result: UploadResult): Promise<UploadResult> => {
    if (!closed) file.close();
    closed = true;
    await Deno.remove(temporary).catch(() => {});
    quota.give(taken);
    return result;
  };
  try {
    if (body) {
      const reader = body.getReader();
      while (true) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (error) {
          return await fail({
            kind: "cut",
            message: `the upload was cut off: ${
              error instanceof Error ? error.message : String(error)
            }`,
          });
        }
        if (chunk.done) break;
        if (!quota.take(chunk.value.length)) {
          await reader.cancel().catch(() => {});
          return await fail(overQuota(quota));
        }
        taken += chunk.value.length;
        let written = 0;
        while (written < chunk.value.length) {
          written += await file.write(chunk.value.subarray(written));
        }
      }
    }
    await file.syncData();
    file.close();
    closed = true;
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
    // Stored: whatever happens now, its bytes stay taken.
    const bytes = taken;
    taken = 0;
    await fsync(dirname(target));
    return { kind: "written", bytes };
  } catch (error) {
    await fail({ kind: "cut", message: "" });
    throw error;
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
