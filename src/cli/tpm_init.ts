/**
 * `forrest tpm init OWNER/REPO/MACHINE`: makes the machine type's TPM state
 * (`machines/<owner>/<repo>/<machine>.swtpm`) with swtpm_setup: a TPM 2.0
 * with an endorsement key (RSA at 0x81010001, ECC at 0x81010016) and an ECC
 * storage primary key (0x81000001). Every run of the machine then gets a
 * copy. The state holds private keys: its folder is 0700 and it is made
 * under a temporary name, so that a failed init leaves nothing a run could
 * pick up.
 */

import { dirname } from "node:path";
import { allMachines, parseTriplet, tripletName } from "../config/mod.ts";
import { fsync, pathExists, runChecked } from "../host/mod.ts";
import { machineTpmPath } from "../images/mod.ts";
import { UsageError } from "./exit.ts";
import { hostSettings } from "./host_settings.ts";
import type { Output } from "./output.ts";

export interface TpmInitFlags {
  readonly force?: boolean;
  readonly baseDir?: string;
  readonly config?: string;
}

export async function tpmInitCommand(
  machine: string,
  flags: TpmInitFlags,
  context: { output: Output; env: (name: string) => string | undefined },
): Promise<number> {
  const triplet = parseTriplet(machine);
  if (!triplet) {
    throw new UsageError(
      `"${machine}" is not a machine: write OWNER/REPO/MACHINE, ` +
        "orgs/ORG/MACHINE or enterprises/SLUG/MACHINE",
    );
  }
  const name = triplet.machine;
  const host = await hostSettings({
    config: flags.config,
    baseDir: flags.baseDir,
    env: context.env,
  });
  let target: string;
  try {
    target = machineTpmPath(host.baseDir, triplet);
  } catch (error) {
    throw new UsageError(`${machine}: ${(error as Error).message}`);
  }
  if (await pathExists(target) && !flags.force) {
    throw new UsageError(
      `${target} exists already; --force replaces it (and loses the keys in it)`,
    );
  }
  await Deno.mkdir(dirname(target), { recursive: true });
  const temp = await Deno.makeTempDir({
    dir: dirname(target),
    prefix: `.${name}.swtpm-`,
  });
  try {
    await runChecked("swtpm_setup", [
      "--tpm2",
      "--tpmstate",
      `dir://${temp}`,
      "--createek",
      "--create-spk",
      "--ecc",
      // No certificates, so no CA configuration is needed.
      "--config",
      "/dev/null",
    ]);
    // The old state aside first, so that there is always one whole state
    // under the name (a rename cannot replace a folder that has files).
    const old = `${temp}.old`;
    const replacing = await pathExists(target);
    if (replacing) await Deno.rename(target, old);
    await Deno.rename(temp, target);
    await fsync(dirname(target));
    if (replacing) await Deno.remove(old, { recursive: true });
  } catch (error) {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
    throw error;
  }
  if (
    host.config &&
    !allMachines(host.config).some((m) =>
      tripletName(m.triplet).toLowerCase() === machine.toLowerCase()
    )
  ) {
    context.output.err(
      `forrest: warning: ${machine} is not a machine of ${host.config.file}: no run uses this TPM until it is`,
    );
  }
  context.output.out(
    `Made ${target}: a TPM 2.0 with an endorsement key (0x81010001 RSA, ` +
      `0x81010016 ECC) and a storage key (0x81000001). Each run of ` +
      `${tripletName(triplet)} gets a copy; what a run changes is not kept.`,
  );
  return 0;
}
