/**
 * The small FAT disks of the guest contract (CIDATA, JOBDATA), made and read
 * without root or loop mounts: mkfs.vfat creates the file system in a file,
 * mtools copies files in and out.
 */

import { dirname, join } from "node:path";
import { CommandError, run, runChecked } from "../host/mod.ts";

/** mtools refuses images whose geometry it does not like without this. */
const MTOOLS_ENV = { MTOOLS_SKIP_CHECK: "1" };

/** Files by path relative to the disk's root ("user-data", "bin/tool"). */
export type DiskFiles = ReadonlyMap<string, Uint8Array>;

/**
 * Writes a FAT image at `path` holding `files`, labelled `label`. The image
 * is 1 MiB, or larger when the files need it (as the original's were).
 */
export async function writeFatImage(
  path: string,
  label: string,
  files: DiskFiles,
): Promise<void> {
  const bytes = [...files.values()].reduce((sum, data) => sum + data.length, 0);
  // Room for the FAT, directories and cluster slack, in KiB.
  const kib = Math.max(
    1024,
    Math.ceil((bytes * 1.25 + 256 * 1024) / 1024 / 64) * 64,
  );
  await Deno.remove(path).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  await runChecked("mkfs.vfat", ["-C", "-n", label, path, String(kib)]);
  if (files.size === 0) return;
  const staging = await Deno.makeTempDir({
    dir: dirname(path),
    prefix: ".fat-",
  });
  try {
    for (const [name, data] of files) {
      await Deno.mkdir(dirname(join(staging, name)), { recursive: true });
      await Deno.writeFile(join(staging, name), data);
    }
    const entries = [...(await Array.fromAsync(Deno.readDir(staging)))].map((
      e,
    ) => join(staging, e.name));
    await runChecked("mcopy", ["-s", "-Q", "-i", path, ...entries, "::/"], {
      env: MTOOLS_ENV,
    });
  } finally {
    await Deno.remove(staging, { recursive: true });
  }
}

/** The contents of `name` on the FAT image, or undefined when it is not there. */
export async function readFatFile(
  image: string,
  name: string,
): Promise<Uint8Array | undefined> {
  const args = ["-n", "-i", image, `::/${name}`, "-"];
  const result = await run("mcopy", args, { env: MTOOLS_ENV });
  if (result.code === 0) return result.stdout;
  if (/not found/i.test(result.stderr)) return undefined;
  throw new CommandError("mcopy", args, result.code, result.stderr);
}

/** The label mkfs.vfat wrote, as blkid in the guest will see it. */
export async function readFatLabel(image: string): Promise<string> {
  const text = await runChecked("mlabel", ["-s", "-i", image, "::"], {
    env: MTOOLS_ENV,
  });
  return text.replace(/^\s*Volume label is\s*/, "").trim();
}
