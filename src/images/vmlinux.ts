/**
 * The uncompressed kernel a Forrest image boots (product.md §13): qemu
 * starts an ELF `vmlinux` with a PVH entry point directly, so the guest
 * skips the bzImage's real-mode setup and its decompressor, which under TCG
 * cost about 3 s of every boot (measured: 5.6 s → 2.4 s from qemu's start
 * to `Run /init`). Written beside each `/boot/vmlinuz-VERSION` at build
 * time as `/boot/forrest-vmlinux-VERSION`; a kernel a job installs later
 * boots the slower way until the image is built again.
 */

import { join } from "node:path";

/** The file name of the uncompressed kernel of `version`. */
export function vmlinuxName(version: string): string {
  return `forrest-vmlinux-${version}`;
}

/** Compressed payloads a bzImage may carry, by their magic bytes. */
const PAYLOADS: readonly { magic: number[]; tool: string; args: string[] }[] = [
  {
    magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    tool: "xz",
    args: ["-dc", "--single-stream"],
  },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], tool: "zstd", args: ["-dc"] },
  { magic: [0x1f, 0x8b], tool: "gzip", args: ["-dc"] },
  // The legacy frame Linux uses (Debian's cloud kernels).
  { magic: [0x02, 0x21, 0x4c, 0x18], tool: "lz4", args: ["-dc"] },
  { magic: [0x42, 0x5a, 0x68], tool: "bzip2", args: ["-dc"] },
];

/** Xen's ELF note type for the PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY). */
const PVH_NOTE = 18;

/**
 * The bzImage's kernel as an ELF file qemu can boot through PVH, or
 * undefined when it has none (not a bzImage, a payload no tool here
 * unpacks, no PVH entry point).
 */
export async function uncompressedKernel(
  bzImage: Uint8Array,
): Promise<Uint8Array | undefined> {
  const payload = payloadOf(bzImage);
  if (payload === undefined) return undefined;
  const format = PAYLOADS.find(({ magic }) =>
    magic.every((byte, i) => payload[i] === byte)
  );
  if (format === undefined) return undefined;
  const unpacked = await decompress(format.tool, format.args, payload);
  const elf = unpacked && elfFile(unpacked);
  return elf && hasPvhEntry(elf) ? elf : undefined;
}

/**
 * The compressed kernel inside a bzImage, where its setup header says
 * (boot protocol 2.08 and later: payload_offset and payload_length).
 */
function payloadOf(bzImage: Uint8Array): Uint8Array | undefined {
  if (bzImage.length < 0x250) return undefined;
  const view = new DataView(
    bzImage.buffer,
    bzImage.byteOffset,
    bzImage.byteLength,
  );
  const magic = new TextDecoder().decode(bzImage.subarray(0x202, 0x206));
  if (magic !== "HdrS" || view.getUint16(0x206, true) < 0x208) {
    return undefined;
  }
  const setupSectors = bzImage[0x1f1] || 4;
  const start = (setupSectors + 1) * 512 + view.getUint32(0x248, true);
  const end = start + view.getUint32(0x24c, true);
  return end <= bzImage.length ? bzImage.subarray(start, end) : undefined;
}

/**
 * Writes `/boot/forrest-vmlinux-VERSION` for each kernel of a root file
 * system that has a PVH entry point; returns the versions written.
 */
export async function writeUncompressedKernels(
  root: string,
): Promise<string[]> {
  const written: string[] = [];
  for await (const entry of Deno.readDir(join(root, "boot"))) {
    if (!entry.name.startsWith("vmlinuz-")) continue;
    const version = entry.name.slice("vmlinuz-".length);
    const elf = await uncompressedKernel(
      await Deno.readFile(join(root, "boot", entry.name)),
    );
    if (elf === undefined) continue;
    await Deno.writeFile(join(root, "boot", vmlinuxName(version)), elf);
    written.push(version);
  }
  return written;
}

async function decompress(
  tool: string,
  args: string[],
  data: Uint8Array,
): Promise<Uint8Array | undefined> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(tool, {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  } catch {
    return undefined;
  }
  const writing = (async () => {
    const writer = child.stdin.getWriter();
    await writer.write(data).catch(() => {});
    await writer.close().catch(() => {});
  })();
  // Linux appends the payload's size to it, which some tools take for a
  // broken trailer (an exit code) after writing the whole kernel out.
  const { stdout } = await child.output();
  await writing;
  return stdout.length > 64 ? stdout : undefined;
}

/**
 * The ELF file at the start of `data`, cut where its section headers end:
 * the payload carries the kernel's relocations after it.
 */
function elfFile(data: Uint8Array): Uint8Array | undefined {
  if (
    data[0] !== 0x7f || data[1] !== 0x45 || data[2] !== 0x4c ||
    data[3] !== 0x46 || data[4] !== 2 // 64-bit
  ) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  let end = shoff + shentsize * shnum;
  for (let i = 0; i < shnum; i++) {
    const header = shoff + i * shentsize;
    if (header + shentsize > data.length) return undefined;
    const type = view.getUint32(header + 4, true);
    const offset = Number(view.getBigUint64(header + 0x18, true));
    const size = Number(view.getBigUint64(header + 0x20, true));
    if (type !== 8) end = Math.max(end, offset + size); // 8: SHT_NOBITS
  }
  return end <= data.length ? data.subarray(0, end) : undefined;
}

/** Whether a program header of type PT_NOTE holds Xen's PVH entry note. */
function hasPvhEntry(elf: Uint8Array): boolean {
  const view = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  const phoff = Number(view.getBigUint64(0x20, true));
  const phentsize = view.getUint16(0x36, true);
  const phnum = view.getUint16(0x38, true);
  for (let i = 0; i < phnum; i++) {
    const header = phoff + i * phentsize;
    if (view.getUint32(header, true) !== 4) continue; // PT_NOTE
    const offset = Number(view.getBigUint64(header + 8, true));
    const size = Number(view.getBigUint64(header + 0x20, true));
    for (let at = offset; at + 12 <= offset + size;) {
      const nameSize = view.getUint32(at, true);
      const descSize = view.getUint32(at + 4, true);
      const type = view.getUint32(at + 8, true);
      const name = new TextDecoder().decode(
        elf.subarray(at + 12, at + 12 + nameSize),
      ).replace(/\0+$/, "");
      if (name === "Xen" && type === PVH_NOTE) return true;
      at += 12 + align4(nameSize) + align4(descSize);
    }
  }
  return false;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
