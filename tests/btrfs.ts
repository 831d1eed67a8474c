/**
 * A real btrfs for tests of the reflink path: a sparse file, mkfs.btrfs,
 * loop-mounted in a temp folder, unmounted and removed afterwards. Needs
 * root (mount); elsewhere the caller skips with the reason this returns.
 */

import { join } from "node:path";
import { run, runChecked } from "../src/host/mod.ts";

/** Why btrfs cannot be mounted here, or undefined when it can. */
export function btrfsUnavailable(): string | undefined {
  if (Deno.uid() !== 0) return "needs root to loop-mount a btrfs";
  return undefined;
}

/**
 * Runs `body` with the mount point of a fresh btrfs of `size` bytes; check
 * btrfsUnavailable() first.
 */
export async function withBtrfs(
  body: (mountPoint: string) => Promise<void>,
  size = 1024 ** 3,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "forrest-btrfs-" });
  const image = join(dir, "fs.img");
  const mountPoint = join(dir, "mnt");
  try {
    await Deno.mkdir(mountPoint);
    const file = await Deno.open(image, { create: true, write: true });
    await file.truncate(size);
    file.close();
    await runChecked("mkfs.btrfs", ["-q", image]);
    await runChecked("mount", ["-o", "loop", image, mountPoint]);
    let failure: unknown;
    try {
      await body(mountPoint);
    } catch (error) {
      failure = error;
    }
    // Always unmount; the body's own failure is the one worth reporting.
    const umount = await run("umount", [mountPoint]);
    if (failure !== undefined) throw failure;
    if (umount.code !== 0) throw new Error(`umount failed: ${umount.stderr}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
