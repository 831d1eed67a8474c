/**
 * Where machine images live (`machines/<owner>/<repo>/<machine>.img`, and
 * `machines/orgs/<org>/…`, `machines/enterprises/<slug>/…`), the
 * facts chooseImage() decides on, and setting a broken image aside.
 */

import { join } from "node:path";
import {
  type MachineConfig,
  scopeSegments,
  type Triplet,
} from "../config/mod.ts";
import { runDirPath } from "../run/mod.ts";
import type { ImageFacts, ImageFile } from "./choose.ts";

/** The persisted image of a machine type (names checked, as for run dirs). */
export function machineImagePath(baseDir: string, triplet: Triplet): string {
  runDirPath(baseDir, triplet, "check"); // throws for names unsafe in a path
  return join(
    baseDir,
    "machines",
    ...scopeSegments(triplet.scope),
    `${triplet.machine}.img`,
  );
}

/**
 * The machine type's TPM state (`machines/<owner>/<repo>/<machine>.swtpm`,
 * as the original has it): a swtpm state folder, or the original's single
 * state file. Its machine gets a TPM when it exists.
 */
export function machineTpmPath(baseDir: string, triplet: Triplet): string {
  return machineImagePath(baseDir, triplet).replace(/\.img$/, ".swtpm");
}

async function imageFile(path: string): Promise<ImageFile | undefined> {
  try {
    const info = await Deno.stat(path);
    return info.isFile
      ? { path, mtime: info.mtime?.getTime() ?? 0 }
      : undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/**
 * What chooseImage() needs to know about `machine`'s images now.
 *
 * @param isRunning whether a run of the given machine type is under way
 */
export async function imageFacts(
  machine: MachineConfig,
  baseDir: string,
  isRunning: (triplet: Triplet) => boolean,
): Promise<ImageFacts> {
  const basePath = machine.baseMachine
    ? machineImagePath(baseDir, machine.baseMachine)
    : machine.baseImage;
  const ownPath = machineImagePath(baseDir, machine.triplet);
  return {
    own: await imageFile(ownPath),
    base: basePath === undefined ? undefined : await imageFile(basePath),
    basePath,
    ownPath,
    baseMachineRunning: machine.baseMachine !== undefined &&
      isRunning(machine.baseMachine),
  };
}

/**
 * Sets an image that did not boot aside as `<image>.broken` (replacing an
 * older one), so that the next run starts from the base again.
 *
 * @returns the new path
 */
export async function quarantineImage(path: string): Promise<string> {
  const broken = `${path}.broken`;
  await Deno.rename(path, broken);
  return broken;
}
