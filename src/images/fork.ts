/**
 * Forking an image for a run in O(1): a reflink copy where the file system
 * can share extents (btrfs, xfs), else a qcow2 overlay backed by the image.
 * The original required reflink; we fall back so that Forrest runs on ext4
 * too, at the cost of a qcow2 → raw conversion when a run persists.
 */

import { dirname, resolve } from "node:path";
import { CommandError, run, runChecked } from "../host/mod.ts";

import type { CloneSetting } from "../config/mod.ts";
export type { CloneSetting };
export type CloneMethod = "reflink" | "qcow2";

export interface Fork {
  readonly path: string;
  readonly format: "raw" | "qcow2";
  readonly method: CloneMethod;
}

export interface ForkOptions {
  readonly clone: CloneSetting;
  /** Bytes to grow the fork to; a fork never shrinks below its image. */
  readonly size?: number | undefined;
}

/** Why a fork could not be made, naming the image. */
export class ForkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ForkError";
  }
}

/**
 * Makes forks, remembering per pair of file systems (image, destination)
 * whether reflinks work, so that `auto` probes once.
 */
export class DiskForker {
  readonly #reflinkWorks = new Map<string, boolean>();

  /**
   * Forks `image` to `dest` plus `.img` (reflink) or `.qcow2` (overlay).
   *
   * @throws {ForkError} when the image is missing or no method works
   */
  async fork(image: string, dest: string, options: ForkOptions): Promise<Fork> {
    const source = resolve(image);
    let imageInfo: Deno.FileInfo;
    try {
      imageInfo = await Deno.stat(source);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new ForkError(`Image "${source}" does not exist`);
      }
      throw error;
    }
    if (!imageInfo.isFile) {
      throw new ForkError(`Image "${source}" is not a file`);
    }
    const key = `${imageInfo.dev}:${(await Deno.stat(dirname(dest))).dev}`;
    const tryReflink = options.clone === "reflink" ||
      (options.clone === "auto" && this.#reflinkWorks.get(key) !== false);
    if (tryReflink) {
      const fork = await reflink(source, `${dest}.img`);
      if (options.clone === "auto") {
        this.#reflinkWorks.set(key, fork !== undefined);
      }
      if (fork) {
        await grow(fork, imageInfo.size, options.size);
        return fork;
      }
      if (options.clone === "reflink") {
        throw new ForkError(
          `Cannot reflink "${source}" into ${
            dirname(dest)
          }: the file system does not ` +
            'support it (use btrfs or xfs for both, or host.clone = "qcow2")',
        );
      }
    }
    const fork = await overlay(
      source,
      `${dest}.qcow2`,
      imageInfo.size,
      options.size,
    );
    return fork;
  }
}

async function reflink(
  source: string,
  path: string,
): Promise<Fork | undefined> {
  // A reflink shares extents, holes included: cp allows no --sparse with it.
  const args = ["--reflink=always", source, path];
  const result = await run("cp", args);
  if (result.code === 0) return { path, format: "raw", method: "reflink" };
  await Deno.remove(path).catch(() => {});
  if (/not supported|cross-device|Invalid argument/i.test(result.stderr)) {
    return undefined;
  }
  throw new CommandError("cp", args, result.code, result.stderr);
}

/** Grows a raw fork by extending the file: sparse, so O(1). */
async function grow(
  fork: Fork,
  imageSize: number,
  size: number | undefined,
): Promise<void> {
  if (size !== undefined && size > imageSize) {
    await Deno.truncate(fork.path, size);
  }
}

async function overlay(
  source: string,
  path: string,
  imageSize: number,
  size: number | undefined,
): Promise<Fork> {
  const args = ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", source, path];
  if (size !== undefined && size > imageSize) args.push(String(size));
  await runChecked("qemu-img", args);
  return { path, format: "qcow2", method: "qcow2" };
}

/**
 * Writes `source` (a qcow2 overlay or image) as a standalone raw image at
 * `dest`: sparse, and independent of any backing file.
 */
export async function convertToRaw(
  source: string,
  dest: string,
): Promise<void> {
  await runChecked("qemu-img", [
    "convert",
    "-q",
    "-f",
    "qcow2",
    "-O",
    "raw",
    source,
    dest,
  ]);
}
