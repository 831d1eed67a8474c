import assert from "node:assert/strict";
import { moduleLoadOrder } from "./initrd.ts";

// Lines as depmod writes them for Debian's generic kernel (trimmed).
const GENERIC = `kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/crypto/crc32c_generic.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/net/9p/9pnet.ko:
`;

Deno.test("moduleLoadOrder puts every module after what it needs, each once", () => {
  const names = moduleLoadOrder(GENERIC, ["virtio_pci", "virtio_blk", "ext4"])
    .map((m) => m.name);
  assert.deepEqual(names, [
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_ring",
    "virtio",
    "virtio_pci",
    "virtio_blk",
    "crc16",
    "mbcache",
    "jbd2",
    "ext4",
  ]);
});

Deno.test("moduleLoadOrder skips built-in modules and reads compressed names", () => {
  // trixie compresses modules; the cloud kernel builds ext4 in.
  const dep =
    "kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz\n" +
    "kernel/drivers/virtio/virtio_ring.ko.xz:\n";
  assert.deepEqual(
    moduleLoadOrder(dep, ["virtio_blk", "ext4", "crc32c-generic"]),
    [
      { name: "virtio_ring", path: "kernel/drivers/virtio/virtio_ring.ko.xz" },
      { name: "virtio_blk", path: "kernel/drivers/block/virtio_blk.ko.xz" },
    ],
  );
});
