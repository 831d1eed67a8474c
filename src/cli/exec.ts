/** `forrest exec`: one command in one throw-away VM. */

import { resolve } from "node:path";
import {
  type Accel,
  formatDuration,
  parseDuration,
  parseSize,
} from "../config/mod.ts";
import { runEphemeral } from "../exec/mod.ts";
import { UsageError } from "./exit.ts";
import { hostSettings } from "./host_settings.ts";
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
  readonly cpus: string;
  readonly ram: string;
  readonly disk?: string;
  readonly timeout?: string;
  readonly keep?: boolean;
  readonly verbose?: boolean;
  readonly accel?: Accel;
  readonly network: "user" | "restricted";
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
  if (flags.image === undefined) {
    throw new UsageError("exec needs an image: --image PATH");
  }
  const cpus = Number(flags.cpus);
  if (!Number.isInteger(cpus) || cpus < 1) {
    throw new UsageError(
      `--cpus must be a whole number of at least 1, not "${flags.cpus}"`,
    );
  }
  const ram = flagValue("--ram", () => parseSize(flags.ram));
  const disk = flags.disk === undefined
    ? undefined
    : flagValue("--disk", () => parseSize(flags.disk!));
  const timeout = flags.timeout === undefined
    ? undefined
    : flagValue("--timeout", () => parseDuration(flags.timeout!));
  const host = await hostSettings({
    config: flags.config,
    baseDir: flags.baseDir,
    env: context.env,
  });

  // Ctrl-C or a service manager's SIGTERM stops the VM through the ladder
  // before Forrest exits, so that no qemu outlives it.
  const interrupt = new AbortController();
  let received: Deno.Signal | undefined;
  const listeners = (["SIGINT", "SIGTERM"] as const).map((signal) => {
    const listener = () => {
      received ??= signal;
      interrupt.abort();
    };
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  let result;
  try {
    result = await runEphemeral({
      baseDir: resolve(host.baseDir),
      image: resolve(flags.image),
      command,
      cpus,
      ram,
      disk,
      timeout,
      keep: flags.keep ?? false,
      accel: flags.accel ?? host.accel,
      clone: host.clone,
      network: flags.network,
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
      return received === "SIGTERM" ? EXIT_TERMINATED : EXIT_INTERRUPTED;
    case "no-exit-code":
      context.output.err(
        `forrest: the VM stopped without reporting an exit code; ${
          where || "no logs kept"
        }`,
      );
      return EXIT_EXEC_FAILED;
  }
}

function flagValue<T>(flag: string, parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new UsageError(`${flag}: ${(error as Error).message}`);
  }
}
