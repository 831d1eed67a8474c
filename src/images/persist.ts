/**
 * Persisting a run: when the job wrote the repository's persistence token
 * to JOBDATA's `persist`, the run's disk becomes the machine's image.
 *
 * Crash safety comes from doing every slow or partial step on a temp file
 * beside the target and putting it in place with one rename: a crash leaves
 * the old image or the new one, never a torn one, plus at most a temp file
 * (`.<name>.tmp-*`) that removePersistLeftovers() deletes.
 */

import { timingSafeEqual } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { fsync, runChecked } from "../host/mod.ts";
import type { Secret } from "../log/mod.ts";
import { convertToRaw, type Fork } from "./fork.ts";

/**
 * Whether the job's `persist` file holds the token. A trailing newline
 * (from `echo`) is fine; anything else is a mismatch. Both sides are hashed
 * first, so the comparison takes the same time whatever the contents and
 * lengths, and nothing about the token leaks through timing.
 */
export async function tokenMatches(
  persist: Uint8Array | undefined,
  token: Secret | undefined,
): Promise<boolean> {
  if (persist === undefined || token === undefined) return false;
  let written = persist;
  if (written.at(-1) === 0x0a) written = written.subarray(0, -1);
  if (written.at(-1) === 0x0d) written = written.subarray(0, -1);
  const [a, b] = await Promise.all([
    crypto.subtle.digest("SHA-256", new Uint8Array(written)),
    crypto.subtle.digest("SHA-256", new TextEncoder().encode(token.reveal())),
  ]);
  return timingSafeEqual(new Uint8Array(a), new Uint8Array(b));
}

/** The steps of persistFork(), for tests that crash between them. */
export type PersistStep = "writing" | "written" | "synced" | "renamed";

export interface PersistOptions {
  /** Called before each step; crash tests kill the process here. */
  readonly beforeStep?: (step: PersistStep) => void | Promise<void>;
}

const TEMP_MARK = ".tmp-";

/**
 * A machine image holds whatever its persisting job left on its disk
 * (caches, credentials), and later runs boot it: only Forrest's user reads
 * it. Others on the host (nginx, in the service's group for the API socket)
 * must not. New folders on the way to it are Forrest's only, too.
 */
export const MACHINE_IMAGE_MODE = 0o600;
const MACHINE_DIR_MODE = 0o700;

/**
 * Makes the run's disk the image at `target`, atomically: a raw (reflink)
 * fork is moved beside the target; a qcow2 overlay is converted into a new
 * raw file there (it depends on its backing image, which may be the very
 * image being replaced). Then fsync, rename, fsync the folder.
 */
export async function persistFork(
  fork: Fork,
  target: string,
  options: PersistOptions = {},
): Promise<void> {
  const step = async (name: PersistStep) => await options.beforeStep?.(name);
  const dir = dirname(target);
  await Deno.mkdir(dir, { recursive: true, mode: MACHINE_DIR_MODE });
  const temp = persistTempPath(target);
  try {
    await step("writing");
    // The mode is set before the data reaches the image folder: a reader
    // that opens the temp file early keeps its access.
    if (fork.format === "raw") {
      await Deno.chmod(fork.path, MACHINE_IMAGE_MODE); // still in the run dir
      await moveOrCopy(fork.path, temp);
    } else {
      // qemu-img writes into an existing file and keeps its mode.
      await Deno.writeFile(temp, new Uint8Array(), {
        createNew: true,
        mode: MACHINE_IMAGE_MODE,
      });
      await convertToRaw(fork.path, temp);
    }
    await step("written");
    await fsync(temp);
    await step("synced");
    await withImageLock(target, () => Deno.rename(temp, target));
    await step("renamed");
    // The rename itself is durable only once the folder is synced.
    await fsync(dir);
  } catch (error) {
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
}

/**
 * A fresh temp path beside `target`, named so that removePersistLeftovers()
 * knows it for a leftover (defragmentImage() writes its copies there too).
 */
export function persistTempPath(target: string): string {
  return join(
    dirname(target),
    `.${basename(target)}${TEMP_MARK}${crypto.randomUUID().slice(0, 8)}`,
  );
}

/**
 * Runs `body` (a rename onto `image`, and the checks before it) while no
 * other persist or rewrite renames onto an image in the same folder, in
 * this process or another (`forrest exec` beside `forrest serve`): without
 * it, a rewrite could check that the image is still the one it copied, lose
 * the race to a persist, and rename the older image over the newer one.
 * flock on the folder: no lock file to leave behind, and the kernel drops
 * the lock with a crashed process. Held only for the rename, never a copy.
 */
export async function withImageLock<T>(
  image: string,
  body: () => Promise<T>,
): Promise<T> {
  const folder = await Deno.open(dirname(image), { read: true });
  try {
    await folder.lock(true);
    return await body();
  } finally {
    folder.close(); // releases the lock
  }
}

/** Same file system: a rename. Across file systems: a copy (reflink if possible). */
async function moveOrCopy(from: string, to: string): Promise<void> {
  try {
    await Deno.rename(from, to);
  } catch (error) {
    if (
      !(error instanceof Deno.errors.NotSupported) &&
      !/cross-device/i.test(String(error))
    ) {
      throw error;
    }
    await runChecked("cp", ["--reflink=auto", "--sparse=always", from, to]);
  }
}

/**
 * Removes temp files that a persist interrupted by a crash left in `dir`
 * (never an image: only names persistTempPath() gives, which persistFork()
 * and defragmentImage() use).
 *
 * @returns the files removed
 */
export async function removePersistLeftovers(dir: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (
        entry.isFile && entry.name.startsWith(".") &&
        entry.name.includes(`.img${TEMP_MARK}`)
      ) {
        await Deno.remove(join(dir, entry.name));
        removed.push(entry.name);
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return removed.sort();
}
