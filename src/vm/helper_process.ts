/**
 * A process that a VM needs beside qemu (the network helper today; swtpm or
 * virtiofsd tomorrow): started with an argument vector (never through a
 * shell), stopped when its VM ends (SIGTERM, then SIGKILL), always awaited,
 * and recorded in the run's record so that crash recovery can stop one that
 * an earlier Forrest left running.
 */

import { basename } from "node:path";
import { getLogger } from "@logtape/logtape";
import { settlesWithin } from "./settles_within.ts";

/** What crash recovery needs to find a helper again. */
export interface HelperRecord {
  readonly name: string;
  readonly pid: number;
  /** Program and arguments, as /proc/PID/cmdline shows them. */
  readonly argv: readonly string[];
}

export interface StartHelperOptions {
  /** A short name for logs and errors: "network". */
  readonly name: string;
  readonly binary: string;
  readonly args: readonly string[];
  readonly cwd: string;
  /**
   * Resolves once the helper does its work; rejects if it cannot. The
   * helper is stopped when this rejects or the helper exits first.
   */
  readonly ready: (helper: HelperProcess, signal: AbortSignal) => Promise<void>;
  /** Milliseconds for `ready`; 10 s by default. */
  readonly readyTimeout?: number;
  /**
   * Called as soon as the process runs, before `ready`: where to record it,
   * so that a crash while it comes up does not leave it unknown.
   */
  readonly onSpawn?: (record: HelperRecord) => Promise<void>;
}

/** A helper did not start, with why. */
export class HelperStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HelperStartError";
  }
}

const STOP_GRACE = 2_000;

export class HelperProcess {
  readonly name: string;
  readonly pid: number;
  readonly record: HelperRecord;
  /** Resolves once the process has exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #child: Deno.ChildProcess;
  #stopping: Promise<void> | undefined;

  private constructor(
    name: string,
    child: Deno.ChildProcess,
    argv: readonly string[],
  ) {
    this.name = name;
    this.pid = child.pid;
    this.#child = child;
    this.record = { name, pid: child.pid, argv };
    this.exited = child.status;
  }

  /**
   * Starts the helper and waits until it is ready.
   *
   * @throws {HelperStartError} when it is missing, exits first, or is not
   *   ready in time (it is stopped then)
   */
  static async start(options: StartHelperOptions): Promise<HelperProcess> {
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(options.binary, {
        args: [...options.args],
        cwd: options.cwd,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new HelperStartError(
          `${options.binary} is not installed (run scripts/setup.sh)`,
        );
      }
      throw error;
    }
    const helper = new HelperProcess(options.name, child, [
      options.binary,
      ...options.args,
    ]);
    try {
      await options.onSpawn?.(helper.record);
    } catch (error) {
      await helper.stop();
      throw error;
    }
    const timeout = options.readyTimeout ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = new AbortController();
    const ready = options.ready(helper, done.signal).then(() =>
      "ready" as const
    );
    try {
      const first = await Promise.race([
        ready,
        helper.exited,
        new Promise<"late">((resolve) =>
          timer = setTimeout(() => resolve("late"), timeout)
        ),
      ]);
      if (first === "late") {
        throw new HelperStartError(
          `${options.binary} was not ready within ${timeout / 1000} s`,
        );
      }
      if (first !== "ready") {
        throw new HelperStartError(
          `${options.binary} exited at start with code ${first.code}`,
        );
      }
    } catch (error) {
      await helper.stop();
      throw error;
    } finally {
      clearTimeout(timer);
      done.abort();
      await ready.catch(() => {});
    }
    return helper;
  }

  /** SIGTERM, then SIGKILL after a grace; safe to call more than once. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    if (await settlesWithin(this.exited, 0)) return;
    signal(this.#child, "SIGTERM");
    if (await settlesWithin(this.exited, STOP_GRACE)) return;
    getLogger(["forrest", "vm"]).warn(
      "Helper {name} (pid {pid}) ignored SIGTERM: killing it",
      { name: this.name, pid: this.pid },
    );
    signal(this.#child, "SIGKILL");
    await this.exited;
  }
}

function signal(child: Deno.ChildProcess, name: Deno.Signal): void {
  try {
    child.kill(name);
  } catch {
    // Exited meanwhile.
  }
}

/**
 * Whether the recorded helper still runs: the pid may have been reused by
 * an unrelated process since, so its command line must match exactly.
 */
export async function isHelperRunning(record: HelperRecord): Promise<boolean> {
  try {
    const cmdline = await Deno.readTextFile(`/proc/${record.pid}/cmdline`);
    const [program, ...args] = cmdline.replace(/\0$/, "").split("\0");
    const [binary, ...recorded] = record.argv;
    // Deno starts a program by its full path: compare the names.
    return program !== undefined && binary !== undefined &&
      basename(program) === basename(binary) &&
      args.length === recorded.length &&
      args.every((arg, i) => arg === recorded[i]);
  } catch {
    return false;
  }
}

/**
 * Stops a helper that an earlier Forrest left (not a child of ours): SIGTERM,
 * then SIGKILL; waits until it is gone.
 */
export async function stopLeftoverHelper(record: HelperRecord): Promise<void> {
  for (const name of ["SIGTERM", "SIGKILL"] as const) {
    if (!(await isHelperRunning(record))) return;
    try {
      Deno.kill(record.pid, name);
    } catch {
      return;
    }
    for (let i = 0; i < 20 && await isHelperRunning(record); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
