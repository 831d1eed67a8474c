import assert from "node:assert/strict";
import { join } from "node:path";
import { testGuestImage } from "../../tests/guest/image.ts";
import { withTempDir } from "../../tests/temp.ts";
import { extractFile, findKernel } from "../vm/mod.ts";
import { uncompressedKernel, writeUncompressedKernels } from "./vmlinux.ts";

Deno.test("uncompressedKernel() unpacks a Debian bzImage into a PVH-bootable ELF", async () => {
  const image = await testGuestImage();
  const files = await findKernel(image);
  await withTempDir(async (dir) => {
    await extractFile(image, files!.kernel, join(dir, "vmlinuz"));
    const bzImage = await Deno.readFile(join(dir, "vmlinuz"));
    const elf = await uncompressedKernel(bzImage);
    assert.ok(elf !== undefined);
    assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]);
    assert.ok(elf.length > 2 * bzImage.length, `${elf.length} bytes`);
    // Written beside it in a root, and chosen over it by findKernel()'s
    // naming (tested through the built image in tests/image_test.ts).
    await Deno.mkdir(join(dir, "root/boot"), { recursive: true });
    await Deno.writeFile(join(dir, "root/boot/vmlinuz-6.1.0-9-amd64"), bzImage);
    assert.deepEqual(await writeUncompressedKernels(join(dir, "root")), [
      "6.1.0-9-amd64",
    ]);
    assert.deepEqual(
      await Deno.readFile(join(dir, "root/boot/forrest-vmlinux-6.1.0-9-amd64")),
      elf,
    );
  });
});

Deno.test("uncompressedKernel() finds nothing in what is no bzImage", async () => {
  const junk = new Uint8Array(64 * 1024).map((_, i) => (i * 7919) % 251);
  assert.equal(await uncompressedKernel(junk), undefined);
  // An xz stream of something that is no kernel.
  const xz = new Deno.Command("xz", {
    args: ["-c"],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = xz.stdin.getWriter();
  await writer.write(new TextEncoder().encode("not a kernel ".repeat(100)));
  await writer.close();
  const { stdout } = await xz.output();
  assert.equal(await uncompressedKernel(stdout), undefined);
});
