/**
 * A run's TPM: a copy of its machine's swtpm state (so that nothing the
 * guest does to the TPM outlives the run, and the key material can be used
 * but not taken), served by a swtpm process of its own that qemu's
 * `tpm-tis` device connects to. swtpm starts before qemu, which connects
 * at once; it is stopped with the VM and, after a crash, by recovery.
 */

import { join } from "node:path";
import type { Triplet } from "../config/mod.ts";
import { pathExists, runChecked } from "../host/mod.ts";
import { machineTpmPath } from "../images/mod.ts";
import { RUN_FILES, type RunDir } from "../run/mod.ts";
import {
  HelperProcess,
  type HelperRecord,
  HelperStartError,
} from "../vm/mod.ts";

/** The machine type's TPM state, or undefined when it has none. */
export async function machineTpmState(
  baseDir: string,
  triplet: Triplet,
): Promise<string | undefined> {
  const path = machineTpmPath(baseDir, triplet);
  return await pathExists(path) ? path : undefined;
}

/**
 * The state as swtpm's --tpmstate names it: a folder (swtpm's own layout,
 * what `forrest tpm init` makes) or a single file (the original's).
 */
async function stateOption(run: RunDir): Promise<string> {
  const info = await Deno.stat(run.file("tpmState"));
  // Relative: swtpm runs in the run directory, whose path may hold commas,
  // which swtpm's option syntax cannot escape.
  return info.isDirectory
    ? `dir=${RUN_FILES.tpmState}`
    : `backend-uri=file://${RUN_FILES.tpmState}`;
}

/** The swtpm command line for a run (without the program name). */
export function swtpmArgs(state: string, controlSocket: string): string[] {
  if (controlSocket.includes(",")) {
    throw new HelperStartError(
      `The TPM's control socket ${controlSocket} has a "," in its path, which swtpm cannot take: choose a base_dir without one`,
    );
  }
  return [
    "socket",
    "--tpm2",
    "--tpmstate",
    state,
    "--ctrl",
    `type=unixio,path=${controlSocket}`,
    "--log",
    `file=${RUN_FILES.tpmLog}`,
  ];
}

/**
 * Copies `state` into the run and starts swtpm on the copy; ready once its
 * control socket takes connections.
 *
 * @throws {HelperStartError} when swtpm is missing or does not start (with
 *   the last lines of its log)
 */
export async function startTpm(
  state: string,
  run: RunDir,
  onSpawn: (record: HelperRecord) => Promise<void>,
): Promise<HelperProcess> {
  // A reflink where the file system can; the state is small either way.
  await runChecked("cp", [
    "-a",
    "--reflink=auto",
    "--",
    state,
    run.file("tpmState"),
  ]);
  const socket = run.socket("tpm");
  return await HelperProcess.start({
    name: "tpm",
    binary: "swtpm",
    args: swtpmArgs(await stateOption(run), socket),
    cwd: run.path,
    onSpawn,
    ready: async (_helper, signal) => {
      while (!signal.aborted) {
        try {
          (await Deno.connect({ transport: "unix", path: socket })).close();
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }
    },
  }).catch(async (error) => {
    if (!(error instanceof HelperStartError)) throw error;
    const said = await Deno.readTextFile(join(run.path, RUN_FILES.tpmLog))
      .then((text) => text.trim().split("\n").slice(-2).join("; "))
      .catch(() => "");
    throw new HelperStartError(
      `The TPM did not start: ${error.message}${said ? `: ${said}` : ""}`,
    );
  });
}
