/** `forrest exec`: one command in one throw-away VM. */

import { resolve } from "node:path";
import {
  type Accel,
  type ArtifactStoreConfig,
  formatDuration,
  loadConfig,
  parseDuration,
  parseSize,
  tripletName,
} from "../config/mod.ts";
import { runEphemeral } from "../exec/mod.ts";
import {
  GUEST_API_PORT,
  type MachineDevices,
  machineTpmState,
  type PersistRule,
} from "../launch/mod.ts";
import type { GuestForward, NetworkMode } from "../vm/mod.ts";
import { pathExists } from "../host/mod.ts";
import { chooseImage, imageFacts, machineImagePath } from "../images/mod.ts";
import { UsageError } from "./exit.ts";
import {
  DEFAULT_CONFIG,
  type HostSettings,
  hostSettings,
} from "./host_settings.ts";
import {
  buildImage,
  defaultDebianImage,
  IMAGE_BUILD_DEFAULTS,
} from "./image_build.ts";
import type { Output } from "./output.ts";

/** The command timed out (as timeout(1) reports it). */
export const EXIT_TIMEOUT = 124;
/** Forrest could not run the command (as docker run reports it). */
export const EXIT_EXEC_FAILED = 125;
/** Interrupted by Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;
/** Stopped by SIGTERM (128 + SIGTERM). */
export const EXIT_TERMINATED = 143;

export interface ExecFlags {
  readonly image?: string;
  readonly machine?: string;
  readonly persist?: boolean;
  readonly cpus?: string;
  readonly ram?: string;
  readonly disk?: string;
  readonly timeout?: string;
  readonly keep?: boolean;
  readonly verbose?: boolean;
  readonly accel?: Accel;
  readonly network?: NetworkMode;
  /** GUEST_PORT:127.0.0.1:HOST_PORT, each. */
  readonly forward?: readonly string[];
  readonly baseDir?: string;
  readonly config?: string;
}

export interface ExecContext {
  readonly output: Output;
  readonly env: (name: string) => string | undefined;
  /** Where the command's output goes: standard output. */
  readonly write: (chunk: Uint8Array) => Promise<void>;
  /** Where the boot log goes with --verbose: standard error. */
  readonly writeLog: (chunk: Uint8Array) => Promise<void>;
}

export async function execCommand(
  command: readonly string[],
  flags: ExecFlags,
  context: ExecContext,
): Promise<number> {
  if (command.length === 0) {
    throw new UsageError("exec needs a command: forrest exec -- CMD [ARGS...]");
  }
  const timeout = flags.timeout === undefined
    ? undefined
    : flagValue("--timeout", () => parseDuration(flags.timeout!));
  const disk = flags.disk === undefined
    ? undefined
    : flagValue("--disk", () => parseSize(flags.disk!));
  // Ctrl-C or a service manager's SIGTERM stops what runs (a first image
  // build, then the VM through the stop ladder) before Forrest exits, so
  // that no mmdebstrap or qemu outlives it. Installed before anything starts.
  const interrupt = new AbortController();
  let received: Deno.Signal | undefined;
  const listeners = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const listener = () => {
      received ??= signal;
      interrupt.abort(new Error(`interrupted by ${signal}`));
    };
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  const exitCodeFor = (signal: Deno.Signal | undefined) =>
    signal === "SIGTERM" ? EXIT_TERMINATED : EXIT_INTERRUPTED;
  let target: ExecTarget;
  let result;
  try {
    try {
      target = await execTarget(flags, context, interrupt.signal);
    } catch (error) {
      if (!interrupt.signal.aborted) throw error;
      context.output.err(
        `forrest: interrupted by ${received} before the VM started; nothing was left behind`,
      );
      return exitCodeFor(received);
    }
    const cpus = flags.cpus === undefined ? target.cpus : Number(flags.cpus);
    if (!Number.isInteger(cpus) || cpus < 1) {
      throw new UsageError(
        `--cpus must be a whole number of at least 1, not "${flags.cpus}"`,
      );
    }
    const ram = flags.ram === undefined
      ? target.ram
      : flagValue("--ram", () => parseSize(flags.ram!));
    const { host } = target;
    result = await runEphemeral({
      baseDir: resolve(host.baseDir),
      image: target.image,
      command,
      cpus,
      ram,
      disk: disk ?? target.disk,
      timeout,
      keep: flags.keep ?? false,
      accel: flags.accel ?? host.accel,
      clone: host.clone,
      network: {
        mode: flags.network ?? target.network,
        forwards: [
          ...target.forwards,
          ...(flags.forward ?? []).map((text) =>
            flagValue("--forward", () => parseForward(text))
          ),
        ],
      },
      ...(target.persist ? { persist: target.persist } : {}),
      artifacts: target.artifacts,
      ...(target.devices ? { devices: target.devices } : {}),
      output: context.write,
      ...(flags.verbose ? { bootLog: context.writeLog } : {}),
      signal: interrupt.signal,
    });
  } finally {
    for (const [signal, listener] of listeners) {
      Deno.removeSignalListener(signal, listener);
    }
  }
  const where = result.left === "all"
    ? `the run directory is kept: ${result.runDir}`
    : result.left === "logs"
    ? `its logs are in ${result.runDir}`
    : "";
  const stopped = `stopped the VM (${result.stoppedBy ?? "it had ended"})`;
  switch (result.outcome) {
    case "exited":
      if (result.persisted) {
        context.output.err(
          `forrest: the run's disk is now ${target.persist!.target}`,
        );
      }
      if (where) context.output.err(`forrest: ${where}`);
      return result.exitCode!;
    case "timeout":
      context.output.err(
        `forrest: timed out after ${formatDuration(timeout!)}; ${stopped}${
          where ? `; ${where}` : ""
        }`,
      );
      return EXIT_TIMEOUT;
    case "interrupted":
      context.output.err(`forrest: interrupted by ${received}; ${stopped}`);
      return exitCodeFor(received);
    case "no-exit-code":
      context.output.err(
        `forrest: the VM stopped without reporting an exit code; ${
          where || "no logs kept"
        }`,
      );
      return EXIT_EXEC_FAILED;
  }
}

interface ExecTarget {
  readonly host: HostSettings;
  readonly image: string;
  readonly cpus: number;
  readonly ram: number;
  readonly disk: number | undefined;
  readonly network: NetworkMode;
  readonly forwards: readonly GuestForward[];
  readonly persist: PersistRule | undefined;
  /** The guest API's upload targets (a machine's `artifacts`). */
  readonly artifacts: readonly ArtifactStoreConfig[];
  /** A machine's shared folders, extra NICs and TPM state. */
  readonly devices?: MachineDevices;
}

/**
 * What exec boots: an image (--image), or a configured machine (--machine
 * owner/repo/machine) with its image chosen by use_base, its size, network,
 * and persistence into its machine image.
 */
async function execTarget(
  flags: ExecFlags,
  context: ExecContext,
  signal: AbortSignal,
): Promise<ExecTarget> {
  if (flags.image !== undefined && flags.machine !== undefined) {
    throw new UsageError("Give --image or --machine, not both");
  }
  if (flags.persist && flags.machine === undefined) {
    throw new UsageError(
      "--persist needs --machine: it makes the run's disk that machine's image",
    );
  }
  if (flags.machine === undefined) {
    const host = await hostSettings({
      config: flags.config,
      baseDir: flags.baseDir,
      env: context.env,
    });
    return {
      host,
      image: flags.image === undefined
        ? await defaultImage(host, flags, context, signal)
        : resolve(flags.image),
      cpus: 2,
      ram: 2 * 1024 ** 3,
      disk: undefined,
      network: "user",
      forwards: [],
      persist: undefined,
      artifacts: [],
    };
  }
  const file = flags.config ?? context.env("FORREST_CONFIG") ?? DEFAULT_CONFIG;
  const config = await loadConfig(file);
  const wanted = flags.machine.toLowerCase();
  const found = config.scopes.flatMap((scopeConfig) =>
    scopeConfig.machines.map((machine) => ({ scopeConfig, machine }))
  ).find(({ machine }) =>
    tripletName(machine.triplet).toLowerCase() === wanted
  );
  if (!found) {
    throw new UsageError(
      `No machine "${flags.machine}" in ${file} (write owner/repo/machine, ` +
        "orgs/ORG/machine or enterprises/SLUG/machine)",
    );
  }
  const { machine, scopeConfig } = found;
  const baseDir = flags.baseDir ?? config.host.baseDir;
  // exec does not see the runs of a running daemon; it takes the images as
  // they are now.
  const choice = chooseImage(
    machine.useBase,
    await imageFacts(machine, baseDir, () => false),
  );
  if (choice.kind === "wait") {
    throw new Error(
      `Machine ${tripletName(machine.triplet)} cannot start: ${choice.message}`,
    );
  }
  return {
    host: {
      baseDir,
      accel: config.host.accel,
      clone: config.host.clone,
      config,
    },
    image: choice.image,
    cpus: machine.cpus,
    ram: machine.ram,
    disk: machine.disk,
    network: machine.network,
    forwards: machine.forwards,
    artifacts: machine.artifacts,
    devices: {
      shared: machine.shared,
      networkInterfaces: machine.networkInterfaces,
      tpmState: await machineTpmState(baseDir, machine.triplet),
    },
    persist: {
      target: machineImagePath(baseDir, machine.triplet),
      token: scopeConfig.persistenceToken,
      onSuccess: flags.persist ?? false,
    },
  };
}

/**
 * The Debian image of `forrest image build debian`, built first when it is
 * missing, so that `forrest exec -- CMD` works on a new machine.
 */
async function defaultImage(
  host: HostSettings,
  flags: ExecFlags,
  context: ExecContext,
  signal: AbortSignal,
): Promise<string> {
  const image = resolve(
    defaultDebianImage(host.baseDir, IMAGE_BUILD_DEFAULTS.release),
  );
  if (await pathExists(image)) return image;
  context.output.err(
    `forrest: no image given and ${image} does not exist yet: building it first ` +
      "(once; forrest image build debian does the same)",
  );
  await buildImage(
    image,
    parseSize(IMAGE_BUILD_DEFAULTS.size),
    {
      ...IMAGE_BUILD_DEFAULTS,
      package: [],
      ...(flags.accel ? { accel: flags.accel } : {}),
    },
    host,
    context.output,
    signal,
  );
  return image;
}

function flagValue<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}

/**
 * `--forward 80:127.0.0.1:3142`: the guest's 10.0.2.100:80 reaches the
 * host's 127.0.0.1:3142.
 *
 * @throws {SyntaxError} for anything else
 */
export function parseForward(text: string): GuestForward {
  const match = /^(\d{1,5}):(127\.0\.0\.1|localhost):(\d{1,5})$/.exec(text);
  const guestPort = Number(match?.[1]);
  const hostPort = Number(match?.[3]);
  if (
    !match || guestPort < 1 || guestPort > 65535 || hostPort < 1 ||
    hostPort > 65535
  ) {
    throw new SyntaxError(
      `Cannot parse forward "${text}": expected GUEST_PORT:127.0.0.1:HOST_PORT, such as "80:127.0.0.1:3142"`,
    );
  }
  if (guestPort === GUEST_API_PORT) {
    throw new SyntaxError(
      `Cannot forward guest port ${GUEST_API_PORT} ("${text}"): it is Forrest's guest API (FORREST_API_URL)`,
    );
  }
  return { guestPort, hostAddress: match[2]!, hostPort };
}
