/**
 * Kernels and initrds read out of images, kept by the image file's
 * identity, so that a start links them into its run directory instead of
 * reading them out with debugfs each time: an uncompressed kernel is 65 MB,
 * about 100 ms of every start (product.md §13: Forrest's own share of a
 * start). A persisted or rebuilt image is a new file (a rename), so its
 * identity is new; old entries go once more than KEPT are there.
 */

import { join } from "node:path";
import { extractFile, type KernelFiles } from "../vm/mod.ts";

/** Entries kept: a few machine types' images, each with its kernel. */
const KEPT = 8;

export interface CachedKernel {
  /** Paths of the cached copies. */
  readonly kernel: string;
  readonly initrd: string | undefined;
}

/**
 * The image's kernel and initrd in the cache at `dir`, read out of it the
 * first time. `files` says where they are inside the image.
 */
export async function cachedKernel(
  dir: string,
  image: string,
  files: KernelFiles,
): Promise<CachedKernel> {
  const info = await Deno.stat(image);
  const key = [
    info.dev,
    info.ino,
    info.mtime?.getTime() ?? 0,
    info.size,
    // The newest kernel inside may change while the file's times do not
    // (debugfs writes keep them): the path is part of the key.
    files.kernel.replace(/[^A-Za-z0-9._-]/g, "_"),
  ].join("-");
  const entry = join(dir, key);
  const cached = {
    kernel: join(entry, "kernel"),
    initrd: files.initrd === undefined ? undefined : join(entry, "initrd"),
  };
  try {
    await Deno.stat(join(entry, "complete"));
    return cached;
  } catch {
    // Not there yet: read out below.
  }
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const temp = await Deno.makeTempDir({ dir, prefix: ".new-" });
  try {
    await extractFile(image, files.kernel, join(temp, "kernel"));
    if (files.initrd !== undefined) {
      await extractFile(image, files.initrd, join(temp, "initrd"));
    }
    await Deno.writeTextFile(join(temp, "complete"), `${image}\n`);
    try {
      await Deno.rename(temp, entry);
    } catch (error) {
      // Another start of the same image got there first.
      if (!(error instanceof Deno.errors.AlreadyExists) && !isNotEmpty(error)) {
        throw error;
      }
    }
  } finally {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
  await prune(dir);
  return cached;
}

/**
 * Puts a cached file into a run directory: a hard link (same file system,
 * no copy), else a copy.
 */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await Deno.link(from, to);
  } catch {
    await Deno.copyFile(from, to);
  }
}

function isNotEmpty(error: unknown): boolean {
  return error instanceof Error && /not empty|ENOTEMPTY/i.test(error.message);
}

/** Keeps the KEPT most recently made entries; leftovers of crashes go too. */
async function prune(dir: string): Promise<void> {
  const entries: { path: string; made: number }[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.name.startsWith(".new-")) {
      // A start that crashed mid-way; one under way now is younger.
      const info = await Deno.stat(path).catch(() => undefined);
      if (info && Date.now() - (info.mtime?.getTime() ?? 0) > 10 * 60_000) {
        await Deno.remove(path, { recursive: true }).catch(() => {});
      }
      continue;
    }
    const info = await Deno.stat(path).catch(() => undefined);
    if (info) entries.push({ path, made: info.mtime?.getTime() ?? 0 });
  }
  entries.sort((a, b) => b.made - a.made);
  for (const { path } of entries.slice(KEPT)) {
    // A run that linked its files keeps them: links outlive the entry.
    await Deno.remove(path, { recursive: true }).catch(() => {});
  }
}
