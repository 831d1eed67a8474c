/**
 * Forking a 10 GiB image for a run and growing it to 20 GiB, three ways: a
 * reflink copy (btrfs), a qcow2 overlay, and a full copy (what forking costs
 * without either). The image is written in full, not sparse, so the copy
 * pays for every byte. The two O(1) paths should be ≥ 100× faster.
 *
 * Needs root (the btrfs is a loop mount) and ~11 GiB free for the image; the
 * full copy needs as much again. Without root nothing is measured.
 */

import { join } from "node:path";
import { DiskForker } from "../src/images/mod.ts";

const GiB = 1024 ** 3;
const IMAGE_SIZE = 10 * GiB;
const GROWN_SIZE = 20 * GiB;

function sh(program: string, args: string[]): void {
  const out = new Deno.Command(program, {
    args,
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!out.success) {
    throw new Error(
      `${program} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

if (Deno.uid() !== 0) {
  console.log("fork_bench: needs root to loop-mount a btrfs; nothing measured");
} else {
  const dir = Deno.makeTempDirSync({ prefix: "forrest-fork-bench-" });
  const mount = join(dir, "mnt");
  Deno.mkdirSync(mount);
  // Room for the image and one full copy, plus metadata.
  const backing = join(dir, "btrfs.img");
  sh("truncate", ["-s", `${3 * IMAGE_SIZE / GiB}G`, backing]);
  sh("mkfs.btrfs", ["-q", backing]);
  sh("mount", ["-o", "loop", backing, mount]);
  globalThis.addEventListener("unload", () => {
    sh("umount", [mount]);
    Deno.removeSync(dir, { recursive: true });
  });
  const image = join(mount, "image.raw");
  sh("dd", [
    "if=/dev/zero",
    `of=${image}`,
    "bs=16M",
    `count=${IMAGE_SIZE / (16 * 1024 ** 2)}`,
  ]);
  sh("sync", []);
  const forker = new DiskForker();
  let n = 0;

  for (const clone of ["reflink", "qcow2"] as const) {
    Deno.bench(`fork a 10 GiB image by ${clone}, grow to 20 GiB`, {
      group: "fork",
      n: 20,
      warmup: 2,
    }, async (b) => {
      const dest = join(mount, `run-${n++}`);
      b.start();
      const fork = await forker.fork(image, dest, { clone, size: GROWN_SIZE });
      b.end();
      await Deno.remove(fork.path);
    });
  }

  Deno.bench("full copy of a 10 GiB image, grow to 20 GiB", {
    group: "fork",
    baseline: true,
    n: 3,
    warmup: 0,
  }, async (b) => {
    const dest = join(mount, `copy-${n++}.img`);
    b.start();
    sh("cp", ["--reflink=never", image, dest]);
    await Deno.truncate(dest, GROWN_SIZE);
    b.end();
    await Deno.remove(dest);
  });
}
