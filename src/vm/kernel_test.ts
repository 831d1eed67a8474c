import assert from "node:assert/strict";
import { join } from "node:path";
import { testGuestImage } from "../../tests/guest/image.ts";
import { extractFile, findKernel, isExtFileSystem } from "./kernel.ts";

Deno.test("isExtFileSystem() tells a bare ext4 image from anything else", async () => {
  assert.equal(await isExtFileSystem(await testGuestImage()), true);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(join(dir, "zero.img"), new Uint8Array(4096));
    await Deno.writeFile(join(dir, "short.img"), new Uint8Array(10));
    assert.equal(await isExtFileSystem(join(dir, "zero.img")), false);
    assert.equal(await isExtFileSystem(join(dir, "short.img")), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findKernel() and extractFile() read the kernel and initrd out of an image", async () => {
  const image = await testGuestImage();
  const files = await findKernel(image);
  assert.match(
    files?.kernel ?? "",
    /^\/boot\/vmlinuz-\d+\.\d+\.\d+-\d+-cloud-amd64$/,
  );
  assert.equal(files?.initrd, files?.kernel.replace("vmlinuz-", "initrd.img-"));
  const dir = await Deno.makeTempDir();
  try {
    await extractFile(image, files!.kernel, join(dir, "vmlinuz"));
    const kernel = await Deno.readFile(join(dir, "vmlinuz"));
    // A bzImage carries "HdrS" at offset 0x202.
    assert.equal(
      new TextDecoder().decode(kernel.subarray(0x202, 0x206)),
      "HdrS",
    );
    await assert.rejects(
      extractFile(image, "/boot/none", join(dir, "none")),
      /Cannot read \/boot\/none out of/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findKernel() returns undefined for an ext4 image without a kernel", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(join(dir, "root/boot"), { recursive: true });
    const image = join(dir, "empty.img");
    const mkfs = await new Deno.Command("mkfs.ext4", {
      args: ["-q", "-d", join(dir, "root"), image, "8M"],
    }).output();
    assert.ok(mkfs.success);
    assert.equal(await findKernel(image), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("findKernel() ignores kernel names that could change the debugfs command", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const boot = join(dir, "root/boot");
    await Deno.mkdir(boot, { recursive: true });
    // Sorts after 6.1.0: it would win if it were taken.
    await Deno.writeTextFile(join(boot, 'vmlinuz-9" "x'), "x");
    await Deno.writeTextFile(join(boot, "vmlinuz-6.1.0-1-amd64"), "kernel");
    const image = join(dir, "boot.img");
    const mkfs = await new Deno.Command("mkfs.ext4", {
      args: ["-q", "-d", join(dir, "root"), image, "8M"],
    }).output();
    assert.ok(mkfs.success);
    assert.equal(
      (await findKernel(image))?.kernel,
      "/boot/vmlinuz-6.1.0-1-amd64",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
