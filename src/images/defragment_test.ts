import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { btrfsUnavailable, withBtrfs } from "../../tests/btrfs.ts";
import { fileSha256, seededRandom } from "../../tests/files.ts";
import { withTempDir } from "../../tests/temp.ts";
import { run, runChecked } from "../host/mod.ts";
import {
  countExtents,
  DEFRAGMENT_THRESHOLD,
  defragmentImage,
  type DefragmentStep,
  planCopy,
} from "./defragment.ts";
import {
  MACHINE_IMAGE_MODE,
  persistFork,
  removePersistLeftovers,
} from "./persist.ts";

const MiB = 1024 * 1024;
const BLOCK = 4096;
const ignore = btrfsUnavailable() !== undefined;

/**
 * What persisting run after run does to a machine image: `size` bytes, the
 * first `written` of them data (no zero blocks), the rest a hole, then a
 * reflink fork with `writes` random 4 KiB blocks rewritten, renamed over it.
 */
async function fragmentedImage(
  path: string,
  size: number,
  writes: number,
  seed = 1,
  written = size,
): Promise<void> {
  const data = new Uint8Array(written);
  for (let block = 0; block < written / BLOCK; block++) {
    data.fill((block % 251) + 1, block * BLOCK, (block + 1) * BLOCK);
  }
  await Deno.writeFile(path, data, { mode: MACHINE_IMAGE_MODE });
  await Deno.truncate(path, size);
  const fork = `${path}.fork`;
  await runChecked("cp", ["--reflink=always", path, fork]);
  const next = seededRandom(seed);
  const file = await Deno.open(fork, { write: true });
  try {
    const block = new Uint8Array(BLOCK);
    for (let i = 0; i < writes; i++) {
      block.fill((i % 255) + 1);
      const at = Math.floor(next() * (size / BLOCK)) * BLOCK;
      await file.seek(at, Deno.SeekMode.Start);
      await file.write(block);
    }
    await file.sync();
  } finally {
    file.close();
  }
  await Deno.rename(fork, path);
}

Deno.test("planCopy() joins touching extents and fills the smallest holes first", () => {
  const e = (start: number, end: number) => ({ start, end });
  const extents = [e(0, 10), e(10, 20), e(25, 30), e(100, 110), e(112, 120)];
  assert.deepEqual(planCopy(extents, 200, 10), {
    ranges: [e(0, 20), e(25, 30), e(100, 110), e(112, 120)],
    bytes: 43,
    filled: 0,
  });
  // The 2-byte hole, then the 5-byte one; the 70-byte one stays.
  assert.deepEqual(planCopy(extents, 200, 2), {
    ranges: [e(0, 30), e(100, 120)],
    bytes: 50,
    filled: 7,
  });
  assert.deepEqual(planCopy(extents, 200, 1).ranges, [e(0, 120)]);
  assert.deepEqual(planCopy(extents, 200, 0).ranges, [e(0, 120)]);
});

Deno.test("planCopy() keeps within the file and takes extents in any order", () => {
  const e = (start: number, end: number) => ({ start, end });
  // The last extent of a file runs on to a whole block past its end.
  assert.deepEqual(planCopy([e(50, 60), e(0, 8), e(90, 4096)], 100, 5), {
    ranges: [e(0, 8), e(50, 60), e(90, 100)],
    bytes: 28,
    filled: 0,
  });
  assert.deepEqual(planCopy([], 100, 5), { ranges: [], bytes: 0, filled: 0 });
});

async function namesIn(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort();
}

Deno.test({
  name:
    "defragmentImage() rewrites a fragmented image into few extents, same bytes, mode and mtime",
  ignore,
  fn: () =>
    withBtrfs(async (mnt) => {
      const image = join(mnt, "build.img");
      await fragmentedImage(image, 64 * MiB, 3_000);
      const before = await countExtents(image);
      assert.ok(before > DEFRAGMENT_THRESHOLD, `${before} extents`);
      const sum = await fileSha256(image);
      const old = await Deno.stat(image);
      // A run that forked the image before keeps its own reflink copy.
      const fork = join(mnt, "run.img");
      await runChecked("cp", ["--reflink=always", image, fork]);

      const result = await defragmentImage(image);

      assert.equal(result.outcome, "rewritten", result.error);
      assert.equal(result.extentsBefore, before);
      const after = await countExtents(image);
      assert.equal(result.extentsAfter, after);
      assert.ok(after <= 8, `${after} extents`);
      assert.equal(await fileSha256(image), sum);
      assert.equal(await fileSha256(fork), sum);
      const now = await Deno.stat(image);
      assert.notEqual(now.ino, old.ino);
      assert.equal(now.mode! & 0o777, MACHINE_IMAGE_MODE);
      assert.equal(now.mtime?.getTime(), old.mtime?.getTime());
      assert.deepEqual(await namesIn(mnt), ["build.img", "run.img"]);
    }),
});

Deno.test({
  name:
    "defragmentImage() joins islands of data in holes by filling the smallest holes",
  ignore,
  fn: () =>
    withBtrfs(async (mnt) => {
      const image = join(mnt, "build.img");
      // A quarter written; the job's writes land mostly in the hole.
      await fragmentedImage(image, 64 * MiB, 3_000, 1, 16 * MiB);
      const before = await countExtents(image);
      const sum = await fileSha256(image);
      const allocated = (await Deno.stat(image)).blocks! * 512;

      const result = await defragmentImage(image, { pieces: 100 });

      assert.equal(result.outcome, "rewritten", result.error);
      assert.equal(result.extentsBefore, before);
      assert.ok(result.extentsAfter! <= 100, `${result.extentsAfter} extents`);
      assert.equal(await countExtents(image), result.extentsAfter);
      assert.equal(await fileSha256(image), sum);
      assert.ok(result.filled! > 0);
      const now = (await Deno.stat(image)).blocks! * 512;
      assert.ok(
        Math.abs(now - allocated - result.filled!) <= MiB,
        `${allocated} + ${result.filled} vs ${now}`,
      );
    }),
});

Deno.test({
  name: "defragmentImage() leaves an image of few extents alone",
  ignore,
  fn: () =>
    withBtrfs(async (mnt) => {
      const image = join(mnt, "build.img");
      await fragmentedImage(image, 16 * MiB, 10);
      const ino = (await Deno.stat(image)).ino;
      const result = await defragmentImage(image);
      assert.equal(result.outcome, "compact");
      assert.ok(result.extentsBefore! <= DEFRAGMENT_THRESHOLD);
      assert.equal((await Deno.stat(image)).ino, ino);
    }),
});

Deno.test("defragmentImage() does nothing where forks are no reflinks", async () => {
  await withTempDir(async (dir) => {
    const type = (await runChecked("stat", ["-f", "-c", "%T", dir])).trim();
    if (type === "btrfs" || type === "xfs") return; // /tmp reflinks here
    const image = join(dir, "build.img");
    await Deno.writeFile(image, new Uint8Array(MiB).fill(7));
    const ino = (await Deno.stat(image)).ino;
    const result = await defragmentImage(image, { threshold: 0 });
    assert.equal(result.outcome, "no-reflink");
    assert.equal(result.extentsBefore, undefined);
    assert.equal((await Deno.stat(image)).ino, ino);
  });
});

Deno.test("defragmentImage() of a missing image does nothing", async () => {
  await withTempDir(async (dir) => {
    const result = await defragmentImage(join(dir, "gone.img"));
    assert.equal(result.outcome, "missing");
    assert.deepEqual(await namesIn(dir), []);
  });
});

Deno.test({
  name:
    "defragmentImage() never renames its copy over an image a persist replaced meanwhile",
  ignore,
  fn: () =>
    withBtrfs(async (mnt) => {
      const dir = join(mnt, "machines/acme/app");
      await Deno.mkdir(dir, { recursive: true });
      const image = join(dir, "build.img");
      await fragmentedImage(image, 32 * MiB, 2_500);
      const newer = join(mnt, "run-disk.img");
      await Deno.writeFile(newer, new Uint8Array(32 * MiB).fill(0x55));
      const newSum = await fileSha256(newer);
      const seen: DefragmentStep[] = [];

      const result = await defragmentImage(image, {
        beforeStep: async (step) => {
          seen.push(step);
          // A run persists while the copy is being made.
          if (step === "synced") {
            await persistFork(
              { path: newer, format: "raw", method: "reflink" },
              image,
            );
          }
        },
      });

      assert.equal(result.outcome, "superseded");
      assert.deepEqual(seen, ["copying", "copied", "synced"]);
      assert.equal(await fileSha256(image), newSum);
      assert.deepEqual(await namesIn(dir), ["build.img"]);
    }),
});

Deno.test({
  name:
    "defragmentImage() keeps the image when there is no room for the copy, or the copy fails",
  ignore,
  fn: () =>
    withBtrfs(async (mnt) => {
      const image = join(mnt, "build.img");
      await fragmentedImage(image, 64 * MiB, 3_000);
      const sum = await fileSha256(image);
      const ino = (await Deno.stat(image)).ino;

      const guarded = await defragmentImage(image, { keepFree: 0.9 });
      assert.equal(guarded.outcome, "no-space");

      // A job fills the file system while the copy is being made.
      const filler = join(mnt, "filler");
      const failed = await defragmentImage(image, {
        beforeStep: async (step) => {
          if (step !== "copying") return;
          await run("dd", ["if=/dev/zero", `of=${filler}`, "bs=1M"]);
        },
      });
      assert.equal(failed.outcome, "failed");
      assert.match(failed.error!, /No space left/);
      await Deno.remove(filler);

      assert.equal(await fileSha256(image), sum);
      assert.equal((await Deno.stat(image)).ino, ino);
      assert.deepEqual(await namesIn(mnt), ["build.img"]);
    }, 256 * MiB),
});

Deno.test({
  name: "defragmentImage() stopped by its signal keeps the image",
  ignore,
  fn: () =>
    withBtrfs(async (mnt) => {
      const image = join(mnt, "build.img");
      await fragmentedImage(image, 32 * MiB, 2_500);
      const sum = await fileSha256(image);
      const stop = new AbortController();
      const result = await defragmentImage(image, {
        signal: stop.signal,
        beforeStep: (step) => {
          if (step === "copying") stop.abort();
        },
      });
      assert.equal(result.outcome, "aborted");
      assert.equal(await fileSha256(image), sum);
      assert.deepEqual(await namesIn(mnt), ["build.img"]);
    }),
});

Deno.test({
  name:
    "defragmentImage() killed before any step leaves the image whole, and only a temp file beside it",
  ignore,
  fn: () =>
    withBtrfs(async (mnt) => {
      const module = new URL("./defragment.ts", import.meta.url).href;
      const steps: DefragmentStep[] = [
        "copying",
        "copied",
        "synced",
        "renaming",
        "renamed",
      ];
      for (const [i, step] of steps.entries()) {
        const dir = join(mnt, step);
        await Deno.mkdir(dir);
        const image = join(dir, "build.img");
        await fragmentedImage(image, 16 * MiB, 1_500, i + 1);
        const sum = await fileSha256(image);
        const code = `
          import { defragmentImage } from ${JSON.stringify(module)};
          await defragmentImage(${JSON.stringify(image)}, {
            threshold: 100,
            beforeStep: (step) => {
              if (step === ${
          JSON.stringify(step)
        }) Deno.kill(Deno.pid, "SIGKILL");
            },
          });
          console.error("not killed");
        `;
        const child = await new Deno.Command(Deno.execPath(), {
          args: ["eval", code],
          cwd: fileURLToPath(new URL("../../", import.meta.url)),
          stdout: "null",
          stderr: "piped",
        }).output();
        assert.equal(
          child.signal,
          "SIGKILL",
          new TextDecoder().decode(child.stderr),
        );
        assert.equal(await fileSha256(image), sum, step);
        // Renamed: the compact copy is the image now.
        assert.equal(
          (await countExtents(image)) <= 8,
          step === "renamed",
          step,
        );
        const removed = await removePersistLeftovers(dir);
        assert.equal(removed.length, step === "renamed" ? 0 : 1, step);
        assert.deepEqual(await namesIn(dir), ["build.img"], step);
      }
    }),
});
