import assert from "node:assert/strict";
import { join } from "node:path";
import { btrfsUnavailable, withBtrfs } from "../../tests/btrfs.ts";
import { runChecked } from "../host/mod.ts";
import { DiskForker, ForkError } from "./fork.ts";
import { withTempDir } from "../../tests/temp.ts";

const MiB = 1024 * 1024;

/** A 4 MiB image whose every MiB starts with its number, to tell copies apart. */
async function makeImage(path: string): Promise<void> {
  const data = new Uint8Array(4 * MiB);
  for (let i = 0; i < 4; i++) data[i * MiB] = i + 1;
  await Deno.writeFile(path, data);
}

function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  return withTempDir(body, "forrest-fork-");
}

async function virtualSize(path: string): Promise<number> {
  const info = JSON.parse(
    await runChecked("qemu-img", ["info", "--output=json", path]),
  );
  return info["virtual-size"];
}

Deno.test("DiskForker.fork() makes a qcow2 overlay backed by the image, grown to size", async () => {
  await withDir(async (dir) => {
    const image = join(dir, "base.img");
    await makeImage(image);
    const fork = await new DiskForker().fork(image, join(dir, "disk"), {
      clone: "qcow2",
      size: 64 * MiB,
    });
    assert.deepEqual(fork, {
      path: join(dir, "disk.qcow2"),
      format: "qcow2",
      method: "qcow2",
    });
    const info = JSON.parse(
      await runChecked("qemu-img", ["info", "--output=json", fork.path]),
    );
    assert.equal(info["backing-filename"], image);
    assert.equal(info["backing-filename-format"], "raw");
    assert.equal(info["virtual-size"], 64 * MiB);
    // O(1): the overlay holds metadata only, however large the image.
    assert.ok((await Deno.stat(fork.path)).size < 1 * MiB);
    // The guest sees the image's bytes through the overlay.
    const raw = join(dir, "check.raw");
    await runChecked("qemu-img", ["convert", "-O", "raw", fork.path, raw]);
    const data = await Deno.readFile(raw);
    assert.deepEqual([data[0], data[MiB], data[3 * MiB]], [1, 2, 4]);
  });
});

Deno.test("DiskForker.fork() never shrinks below the image", async () => {
  await withDir(async (dir) => {
    const image = join(dir, "base.img");
    await makeImage(image);
    const fork = await new DiskForker().fork(image, join(dir, "disk"), {
      clone: "qcow2",
      size: 1 * MiB,
    });
    assert.equal(await virtualSize(fork.path), 4 * MiB);
  });
});

Deno.test("DiskForker.fork() with auto falls back to qcow2 where reflink is impossible, once", async () => {
  await withDir(async (dir) => {
    // /tmp is not btrfs or xfs on these machines; where it is, this test
    // still passes by taking the reflink path.
    const image = join(dir, "base.img");
    await makeImage(image);
    const forker = new DiskForker();
    const first = await forker.fork(image, join(dir, "a"), { clone: "auto" });
    const second = await forker.fork(image, join(dir, "b"), { clone: "auto" });
    assert.equal(first.method, second.method);
    const leftovers = (await Array.fromAsync(Deno.readDir(dir))).map((e) =>
      e.name
    ).sort();
    assert.deepEqual(
      leftovers,
      [
        "base.img",
        first.path.slice(dir.length + 1),
        second.path.slice(dir.length + 1),
      ].sort(),
    );
  });
});

Deno.test("DiskForker.fork() names a missing image", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      new DiskForker().fork(join(dir, "none.img"), join(dir, "disk"), {
        clone: "auto",
      }),
      new ForkError(`Image "${join(dir, "none.img")}" does not exist`),
    );
  });
});

const noBtrfs = btrfsUnavailable();
if (noBtrfs) console.log(`skipping reflink tests: ${noBtrfs}`);

Deno.test({
  name: "DiskForker.fork() reflinks on btrfs and grows the fork sparsely",
  ignore: noBtrfs !== undefined,
  fn: () =>
    withBtrfs(async (mount) => {
      const image = join(mount, "base.img");
      await makeImage(image);
      const forker = new DiskForker();
      const fork = await forker.fork(image, join(mount, "disk"), {
        clone: "auto",
        size: 256 * MiB,
      });
      assert.deepEqual(fork, {
        path: join(mount, "disk.img"),
        format: "raw",
        method: "reflink",
      });
      assert.equal((await Deno.stat(fork.path)).size, 256 * MiB);
      const data = await Deno.readFile(fork.path);
      assert.deepEqual([data[0], data[MiB], data[3 * MiB], data[200 * MiB]], [
        1,
        2,
        4,
        0,
      ]);
      // Writing to the fork leaves the image alone.
      const file = await Deno.open(fork.path, { write: true });
      await file.write(new Uint8Array([9]));
      file.close();
      assert.equal((await Deno.readFile(image))[0], 1);
    }),
});

Deno.test({
  name: "DiskForker.fork() with reflink fails clearly across file systems",
  ignore: noBtrfs !== undefined,
  fn: () =>
    withBtrfs(async (mount) => {
      await withDir(async (dir) => {
        const image = join(dir, "base.img");
        await makeImage(image);
        await assert.rejects(
          new DiskForker().fork(image, join(mount, "disk"), {
            clone: "reflink",
          }),
          /Cannot reflink .* the file system does not support it/,
        );
        const fork = await new DiskForker().fork(image, join(mount, "disk"), {
          clone: "auto",
        });
        assert.equal(fork.method, "qcow2");
      });
    }),
});
