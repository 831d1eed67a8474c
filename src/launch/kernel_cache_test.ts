import assert from "node:assert/strict";
import { join } from "node:path";
import { testGuestImage } from "../../tests/guest/image.ts";
import { withTempDir } from "../../tests/temp.ts";
import { runChecked } from "../host/mod.ts";
import { findKernel } from "../vm/mod.ts";
import { cachedKernel, linkOrCopy } from "./kernel_cache.ts";

Deno.test("cachedKernel() reads an image's kernel once, and again for a new image file", async () => {
  const source = await testGuestImage();
  await withTempDir(async (dir) => {
    const image = join(dir, "image.img");
    await runChecked("cp", ["--sparse=always", source, image]);
    const files = (await findKernel(image))!;
    const cache = join(dir, "cache");
    const first = await cachedKernel(cache, image, files);
    const kernel = await Deno.readFile(first.kernel);
    assert.equal(
      new TextDecoder().decode(kernel.subarray(0x202, 0x206)),
      "HdrS",
    );
    assert.ok((await Deno.stat(first.initrd!)).size > 0);
    // Again: the same entry, not read out anew.
    const made = (await Deno.stat(first.kernel)).mtime;
    const again = await cachedKernel(cache, image, files);
    assert.equal(again.kernel, first.kernel);
    assert.deepEqual((await Deno.stat(again.kernel)).mtime, made);
    // A persist puts a new file in place (a rename): a new entry.
    await runChecked("cp", ["--sparse=always", source, `${image}.new`]);
    await Deno.rename(`${image}.new`, image);
    const renewed = await cachedKernel(cache, image, files);
    assert.notEqual(renewed.kernel, first.kernel);
    // Linked into a run directory: the same file, no copy.
    await linkOrCopy(renewed.kernel, join(dir, "vmlinuz"));
    assert.equal(
      (await Deno.stat(join(dir, "vmlinuz"))).ino,
      (await Deno.stat(renewed.kernel)).ino,
    );
    const entries = await Array.fromAsync(Deno.readDir(cache));
    assert.equal(entries.length, 2, "no temp folders left");
  });
});
