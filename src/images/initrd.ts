/**
 * A minimal initramfs for Forrest's images. Debian's (initramfs-tools, with
 * udev) takes ~6 s under TCG to unpack and find the root disk; this one
 * loads the modules the kernel needs for /dev/vda and ext4 (found in its
 * modules.dep), mounts it and hands over to systemd, in well under a second. Debian's tools stay
 * installed: a kernel upgraded inside a persisted image gets a standard
 * initrd again, slower but working.
 */

import { extname, join } from "node:path";
import { CommandError, run } from "../host/mod.ts";
import { cpioArchive, type CpioEntry } from "./cpio.ts";

/**
 * What Debian's cloud kernel needs for /dev/vda, in load order (each needs
 * the ones before it): for the tests' guest, whose kernel comes straight
 * from its package, without the modules.dep that depmod writes.
 */
const MODULES = [
  "virtio_ring",
  "virtio",
  "virtio_pci_legacy_dev",
  "virtio_pci_modern_dev",
  "virtio_pci",
  "virtio_blk",
];

const init = (modules: readonly string[]) =>
  `#!/bin/busybox sh
# Forrest's initramfs: virtio modules, root on /dev/vda, then systemd.
bb=/bin/busybox
$bb mount -t proc proc /proc
$bb mount -t sysfs sysfs /sys
$bb mount -t devtmpfs devtmpfs /dev
for m in ${
    modules.join(" ")
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
 * The initramfs: busybox, the modules (name → contents, in load order; a
 * module missing from the map is taken to be built into the kernel), and
 * the init script.
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
    data: new TextEncoder().encode(init([...modules.keys()])),
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
 * What the root disk needs, whatever the kernel builds in: the cloud kernel
 * has ext4 built in, the generic one (which has 9p, for shared folders) has
 * it as a module. ext4 asks for crc32c by name at mount time, which nothing
 * in this initramfs could load on demand.
 */
const ROOT_MODULES = ["virtio_pci", "virtio_blk", "crc32c_generic", "ext4"];

/**
 * The modules to load for `wanted`, dependencies first, from a kernel's
 * modules.dep (`path: dep dep…` per line). Modules it does not list are
 * built in (or absent: the mount then fails and says so).
 */
export function moduleLoadOrder(
  modulesDep: string,
  wanted: readonly string[],
): { readonly name: string; readonly path: string }[] {
  const deps = new Map<string, { path: string; deps: string[] }>();
  const nameOf = (path: string) =>
    (path.split("/").pop() ?? "").replace(/\.ko(\.(xz|zst|gz))?$/, "")
      .replaceAll("-", "_");
  for (const line of modulesDep.split("\n")) {
    const [path, rest] = line.split(":");
    if (!path || rest === undefined) continue;
    deps.set(nameOf(path), {
      path,
      deps: rest.trim().split(/\s+/).filter(Boolean).map(nameOf),
    });
  }
  const order: { name: string; path: string }[] = [];
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    const entry = deps.get(name);
    if (!entry) return; // built in
    entry.deps.forEach(visit);
    order.push({ name, path: entry.path });
  };
  wanted.forEach((name) => visit(name.replaceAll("-", "_")));
  return order;
}

/**
 * Replaces the initrd of every kernel in `root`/boot with fastInitrd(),
 * built from the image's own modules (decompressed: busybox's insmod takes
 * plain .ko files) and busybox (busybox-static).
 */
export async function writeFastInitrds(root: string): Promise<void> {
  const busybox = await Deno.readFile(join(root, "bin/busybox"));
  for await (const entry of Deno.readDir(join(root, "boot"))) {
    if (!entry.name.startsWith("vmlinuz-")) continue;
    const version = entry.name.slice("vmlinuz-".length);
    const dir = join(root, "lib/modules", version);
    const order = moduleLoadOrder(
      await Deno.readTextFile(join(dir, "modules.dep")),
      ROOT_MODULES,
    );
    const modules = new Map<string, Uint8Array>();
    for (const { name, path } of order) {
      modules.set(name, await readModule(join(dir, path)));
    }
    await Deno.writeFile(
      join(root, "boot", `initrd.img-${version}`),
      fastInitrd(busybox, modules),
    );
  }
}

/** Decompressors by module suffix (trixie's modules are .ko.xz). */
const UNPACK: Readonly<Record<string, string>> = {
  ".xz": "xz",
  ".zst": "zstd",
  ".gz": "gzip",
};

async function readModule(path: string): Promise<Uint8Array> {
  const tool = UNPACK[extname(path)];
  if (!tool) return await Deno.readFile(path);
  const args = ["-dc", path];
  const result = await run(tool, args);
  if (result.code !== 0) {
    throw new CommandError(tool, args, result.code, result.stderr);
  }
  return result.stdout;
}
