/**
 * The images under a base dir: src images (`images/`), machine images
 * (`machines/<owner>/<repo>/<machine>.img`) and images set aside as broken,
 * with what each derives from when a config says so, and what it was
 * built from when its build recorded it.
 */

import { join, relative } from "node:path";
import { allMachines, type Config, tripletName } from "../config/mod.ts";
import { type BuildRecord, readBuildRecord } from "./build_record.ts";

export interface ImageEntry {
  /** Relative to the base dir. */
  readonly path: string;
  readonly kind: "src" | "machine" | "broken";
  /** Bytes the file really takes (images are sparse). */
  readonly sizeOnDisk: number;
  /** Bytes the guest sees. */
  readonly size: number;
  readonly modified: Date;
  /** For machine images: the machine's base, from the config. */
  readonly derivesFrom: string | undefined;
  /**
   * What the image was built from (its root's, for a machine image), as
   * its build recorded it; undefined when Forrest did not build it.
   */
  readonly build: BuildRecord | undefined;
}

export async function listImages(
  baseDir: string,
  config?: Config,
): Promise<ImageEntry[]> {
  const entries: ImageEntry[] = [];
  const add = async (
    path: string,
    kind: ImageEntry["kind"],
    derivesFrom?: string,
  ) => {
    const info = await Deno.stat(path);
    const build = kind === "broken" ? undefined : await readBuildRecord(path);
    entries.push({
      path: relative(baseDir, path),
      kind: path.endsWith(".broken") ? "broken" : kind,
      sizeOnDisk: (info.blocks ?? 0) * 512,
      size: info.size,
      modified: info.mtime ?? new Date(0),
      derivesFrom,
      build,
    });
  };
  for (const file of await files(join(baseDir, "images"))) {
    await add(file, "src");
  }
  const bases = new Map<string, string>();
  for (const machine of config ? allMachines(config) : []) {
    bases.set(
      tripletName(machine.triplet).toLowerCase(),
      machine.baseMachine
        ? `machine ${tripletName(machine.baseMachine)}`
        : `image ${machine.baseImage}`,
    );
  }
  for (const owner of await dirs(join(baseDir, "machines"))) {
    for (const repo of await dirs(owner)) {
      for (const file of await files(repo)) {
        const machine = file.slice(repo.length + 1).replace(
          /\.img(\.broken)?$/,
          "",
        );
        const triplet = `${
          relative(join(baseDir, "machines"), repo)
        }/${machine}`;
        await add(file, "machine", bases.get(triplet.toLowerCase()));
      }
    }
  }
  return entries;
}

/** Image files in `dir` (hidden files, such as builds and temp files, left out). */
async function files(dir: string): Promise<string[]> {
  const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
  return entries.filter((e) => e.isFile && !e.name.startsWith(".")).map((e) =>
    join(dir, e.name)
  )
    .sort();
}

async function dirs(dir: string): Promise<string[]> {
  const entries = await Array.fromAsync(Deno.readDir(dir)).catch(() => []);
  return entries.filter((e) => e.isDirectory).map((e) => join(dir, e.name))
    .sort();
}
