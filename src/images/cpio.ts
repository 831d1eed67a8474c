/**
 * A newc ("070701") cpio archive writer, enough for an initramfs: folders,
 * regular files and symlinks. The kernel unpacks this format; writing it is
 * simpler than depending on a cpio binary the test machines lack.
 */

export type CpioEntry =
  | { readonly kind: "dir"; readonly path: string }
  | {
    readonly kind: "file";
    readonly path: string;
    readonly data: Uint8Array;
    readonly mode?: number;
  }
  | {
    readonly kind: "symlink";
    readonly path: string;
    readonly target: string;
  };

const encoder = new TextEncoder();

export function cpioArchive(entries: readonly CpioEntry[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const append = (bytes: Uint8Array) => {
    chunks.push(bytes);
    size += bytes.length;
  };
  // Each header+name, and each file's data, is padded to 4 bytes.
  const align = () => {
    const pad = (4 - (size % 4)) % 4;
    if (pad) append(new Uint8Array(pad));
  };
  let inode = 1;
  const add = (path: string, mode: number, data: Uint8Array) => {
    const name = encoder.encode(`${path}\0`);
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    const fields = [
      inode++,
      mode,
      0,
      0,
      1,
      0,
      data.length,
      0,
      0,
      0,
      0,
      name.length,
      0,
    ];
    append(
      encoder.encode(
        `070701${fields.map((f) => f.toString(16).padStart(8, "0")).join("")}`,
      ),
    );
    append(name);
    align();
    append(data);
    align();
  };
  for (const entry of entries) {
    if (entry.kind === "dir") add(entry.path, 0o040755, new Uint8Array());
    else if (entry.kind === "file") {
      add(entry.path, 0o100000 | (entry.mode ?? 0o644), entry.data);
    } else add(entry.path, 0o120777, encoder.encode(entry.target));
  }
  add("TRAILER!!!", 0, new Uint8Array());
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}
