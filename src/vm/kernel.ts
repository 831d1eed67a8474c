/**
 * Direct kernel boot: when an image is a bare ext4 file system (as
 * `forrest image build` makes them), its kernel and initrd are read out of
 * it with debugfs, without mounting, so that a kernel upgraded inside a
 * persisted image is the one that boots next time.
 */

import { runChecked } from "../host/mod.ts";

/** ext2/3/4 superblock magic, at byte 1080 of the file system. */
const EXT_MAGIC_OFFSET = 1080;

/** Whether `image` starts with an ext2/3/4 superblock (no partition table). */
export async function isExtFileSystem(image: string): Promise<boolean> {
  const file = await Deno.open(image, { read: true });
  try {
    const buffer = new Uint8Array(2);
    await file.seek(EXT_MAGIC_OFFSET, Deno.SeekMode.Start);
    const read = await file.read(buffer);
    return read === 2 && buffer[0] === 0x53 && buffer[1] === 0xef;
  } finally {
    file.close();
  }
}

export interface KernelFiles {
  /** Paths inside the image, e.g. "/boot/vmlinuz-6.1.0-56-cloud-amd64". */
  readonly kernel: string;
  readonly initrd: string | undefined;
}

/**
 * The newest `/boot/vmlinuz-*` of the image and its `/boot/initrd.img-*`,
 * or undefined when /boot holds no kernel. Where the image has the same
 * kernel uncompressed (`/boot/forrest-vmlinux-*`, images/vmlinux.ts), that
 * one: qemu boots it through its PVH entry, seconds faster under TCG.
 */
export async function findKernel(
  image: string,
  uncompressed = true,
): Promise<KernelFiles | undefined> {
  // `ls -p` prints one "/inode/mode/uid/gid/name/size/" line per entry.
  const listing = await runChecked("debugfs", ["-R", "ls -p /boot", image]);
  const names = listing.split("\n").map((line) => line.split("/")[5] ?? "")
    .filter(Boolean);
  // Names come from an image a job may have written: only plain version
  // strings, so that nothing can change the debugfs command they go into.
  const versions = names
    .filter((name) => /^vmlinuz-[A-Za-z0-9._+~-]+$/.test(name))
    .map((name) => name.slice("vmlinuz-".length))
    .sort((a, b) => b.localeCompare(a, "en", { numeric: true }));
  const version = versions[0];
  if (version === undefined) return undefined;
  const initrd = `initrd.img-${version}`;
  const name = `forrest-vmlinux-${version}`;
  return {
    kernel: uncompressed && names.includes(name)
      ? `/boot/${name}`
      : `/boot/vmlinuz-${version}`,
    initrd: names.includes(initrd) ? `/boot/${initrd}` : undefined,
  };
}

/**
 * Copies one file out of an ext4 image.
 *
 * @throws {Error} when debugfs could not write it (debugfs itself exits 0)
 */
export async function extractFile(
  image: string,
  path: string,
  out: string,
): Promise<void> {
  await runChecked("debugfs", ["-R", `dump "${path}" "${out}"`, image]);
  const info = await Deno.stat(out).catch(() => undefined);
  if (!info?.isFile || info.size === 0) {
    throw new Error(`Cannot read ${path} out of ${image} with debugfs`);
  }
}

/**
 * A small text file of an ext4 image, or undefined when it has none (or
 * is no ext4 image).
 */
export async function readImageText(
  image: string,
  path: string,
): Promise<string | undefined> {
  const { code, stdout } = await new Deno.Command("debugfs", {
    args: ["-R", `cat "${path}"`, image],
    stdout: "piped",
    stderr: "null",
  }).output();
  if (code !== 0 || stdout.length === 0) return undefined;
  return new TextDecoder().decode(stdout.subarray(0, 64 * 1024));
}
