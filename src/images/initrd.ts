/**
 * A minimal initramfs for Forrest's images. Debian's (initramfs-tools, with
 * udev) takes ~6 s under TCG to unpack and find the root disk; this one
 * loads the six virtio modules the cloud kernel needs for /dev/vda, mounts
 * it and hands over to systemd, in well under a second. Debian's tools stay
 * installed: a kernel upgraded inside a persisted image gets a standard
 * initrd again, slower but working.
 */

import { join } from "node:path";
import { runChecked } from "../host/mod.ts";
import { cpioArchive, type CpioEntry } from "./cpio.ts";

/** In load order: each module needs the ones before it. */
const MODULES = [
  "virtio_ring",
  "virtio",
  "virtio_pci_legacy_dev",
  "virtio_pci_modern_dev",
  "virtio_pci",
  "virtio_blk",
];

const INIT = `#!/bin/busybox sh
# Forrest's initramfs: virtio modules, root on /dev/vda, then systemd.
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
for m in ${
  MODULES.join(" ")
}; do $bb insmod /lib/modules/$m.ko 2>/dev/null; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 200 ]; do $bb usleep 50000; i=$((i + 1)); done
if ! $bb mount -t ext4 -o rw /dev/vda /root; then
  echo "forrest initramfs: cannot mount /dev/vda; powering off"
  $bb poweroff -f
fi
$bb umount /proc /sys
$bb mount --move /dev /root/dev
exec $bb switch_root /root /sbin/init
`;

/**
 * The initramfs: busybox, the modules (name → contents; a module missing
 * from the map is taken to be built into the kernel), and the init script.
 */
export function fastInitrd(
  busybox: Uint8Array,
  modules: ReadonlyMap<string, Uint8Array>,
): Uint8Array {
  const entries: CpioEntry[] = [
    "bin",
    "dev",
    "lib",
    "lib/modules",
    "proc",
    "root",
    "sys",
  ]
    .map((path) => ({ kind: "dir", path }));
  entries.push({
    kind: "file",
    path: "bin/busybox",
    data: busybox,
    mode: 0o755,
  });
  entries.push({
    kind: "file",
    path: "init",
    data: new TextEncoder().encode(INIT),
    mode: 0o755,
  });
  for (const [name, data] of modules) {
    entries.push({ kind: "file", path: `lib/modules/${name}.ko`, data });
  }
  return cpioArchive(entries);
}

/** The modules fastInitrd() loads, in load order. */
export const INITRD_MODULES: readonly string[] = MODULES;

/**
 * Replaces the initrd of every kernel in `root`/boot with fastInitrd(),
 * built from the image's own modules and busybox (busybox-static).
 */
export async function writeFastInitrds(root: string): Promise<void> {
  const busybox = await Deno.readFile(join(root, "bin/busybox"));
  for await (const entry of Deno.readDir(join(root, "boot"))) {
    if (!entry.name.startsWith("vmlinuz-")) continue;
    const version = entry.name.slice("vmlinuz-".length);
    const tree = join(root, "lib/modules", version, "kernel");
    const modules = new Map<string, Uint8Array>();
    for (const name of MODULES) {
      const found =
        (await runChecked("find", [tree, "-name", `${name}.ko*`])).trim().split(
          "\n",
        )[0];
      if (!found) continue; // built into this kernel
      if (!found.endsWith(".ko")) {
        throw new Error(
          `Module ${found} is compressed; the fast initrd needs plain .ko files`,
        );
      }
      modules.set(name, await Deno.readFile(found));
    }
    await Deno.writeFile(
      join(root, "boot", `initrd.img-${version}`),
      fastInitrd(busybox, modules),
    );
  }
}
