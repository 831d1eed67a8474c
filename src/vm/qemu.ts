/**
 * One qemu process under supervision: started with an argument vector (never
 * through a shell), controlled over QMP, always awaited. A guest that powers
 * off ends the process (SHUTDOWN, then exit); Forrest ends one with the stop
 * ladder: ask the guest (ACPI power button), then qemu (`quit`), then the
 * kernel (SIGKILL), and reports which step it took.
 */

/** What goes with a VM: a helper process, a watch on its files. */
export interface Attached {
  stop(): Promise<void>;
}
import { QmpClient, QmpError } from "./qmp.ts";
import { settlesWithin } from "./settles_within.ts";

export type StopStep = "powerdown" | "quit" | "kill";

export interface VmExit {
  readonly code: number;
  readonly signal: Deno.Signal | null;
  /** The guest powered itself off (QMP SHUTDOWN with guest: true). */
  readonly guestShutdown: boolean;
  /** Set when stop() ended the VM: the step that did. */
  readonly stoppedBy: StopStep | undefined;
  /** The end of qemu's stderr, for error messages. */
  readonly stderr: string;
}

export interface StartVmOptions {
  readonly argv: readonly string[];
  /** qemu's working directory: the run directory. */
  readonly cwd: string;
  /** Absolute path of the QMP socket that argv asks qemu to create. */
  readonly qmpSocket: string;
  readonly binary?: string;
  /** Milliseconds for qemu to start listening on QMP; 30 s by default. */
  readonly startTimeout?: number;
}

export interface StopOptions {
  /** Milliseconds the guest gets to power off after the power button. */
  readonly powerdownTimeout?: number;
  /** Milliseconds qemu gets to exit after `quit`. */
  readonly quitTimeout?: number;
}

/** qemu did not start, with what it printed. */
export class VmStartError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VmStartError";
  }
}

const MAX_STDERR = 16 * 1024;

export class QemuVm {
  readonly pid: number;
  /** Resolves once qemu has exited and everything it held is released. */
  readonly exited: Promise<VmExit>;
  readonly #child: Deno.ChildProcess;
  readonly #qmp: QmpClient;
  #stoppedBy: StopStep | undefined;
  #stopping: Promise<StopStep | undefined> | undefined;
  readonly #helpers: Attached[] = [];
  #ended = false;

  private constructor(
    child: Deno.ChildProcess,
    qmp: QmpClient,
    status: Promise<Deno.CommandStatus>,
    stderr: () => string,
  ) {
    this.pid = child.pid;
    this.#child = child;
    this.#qmp = qmp;
    let guestShutdown = false;
    qmp.onEvent((event) => {
      if (event.event === "SHUTDOWN" && event.data?.guest === true) {
        guestShutdown = true;
      }
    });
    this.exited = status.then(async (status) => {
      this.#ended = true;
      await qmp.close();
      // What served this VM goes with it.
      await Promise.all(this.#helpers.map((helper) => helper.stop()));
      return {
        code: status.code,
        signal: status.signal,
        guestShutdown,
        stoppedBy: this.#stoppedBy,
        stderr: stderr(),
      };
    });
  }

  /**
   * Starts qemu and connects to its QMP socket.
   *
   * @throws {VmStartError} when qemu exits first or QMP does not come up
   */
  static async start(options: StartVmOptions): Promise<QemuVm> {
    const binary = options.binary ?? "qemu-system-x86_64";
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(binary, {
        args: [...options.argv],
        cwd: options.cwd,
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new VmStartError(
          `${binary} is not installed (run scripts/setup.sh)`,
        );
      }
      throw error;
    }
    let stderr = "";
    const decoder = new TextDecoder();
    const reading = child.stderr.pipeTo(
      new WritableStream({
        write(chunk) {
          stderr = (stderr + decoder.decode(chunk, { stream: true })).slice(
            -MAX_STDERR,
          );
        },
      }),
    );
    // The status promise only settles after stderr is drained, so that the
    // exit report carries all of it.
    const status = child.status.then(async (s) => {
      await reading.catch(() => {});
      return s;
    });
    let exited = false;
    status.then(() => exited = true);
    const deadline = Date.now() + (options.startTimeout ?? 30_000);
    for (;;) {
      if (exited) {
        const last = stderr.trim().split("\n").slice(-3).join("; ");
        throw new VmStartError(`qemu exited at start: ${last || "no message"}`);
      }
      try {
        const qmp = await QmpClient.connect(options.qmpSocket);
        return new QemuVm(child, qmp, status, () => stderr);
      } catch (error) {
        const notYet = error instanceof Deno.errors.NotFound ||
          error instanceof Deno.errors.ConnectionRefused ||
          error instanceof QmpError;
        if (!notYet || Date.now() > deadline) {
          child.kill("SIGKILL");
          await status;
          throw new VmStartError(
            `qemu did not answer on ${options.qmpSocket}: ${
              (error as Error).message
            }`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  /**
   * Stops the VM: power button, then `quit`, then SIGKILL, each given its
   * time. Returns the step that ended it, or undefined when it had ended by
   * itself. Safe to call more than once.
   */
  stop(options: StopOptions = {}): Promise<StopStep | undefined> {
    this.#stopping ??= this.#ladder(options);
    return this.#stopping;
  }

  async #ladder(options: StopOptions): Promise<StopStep | undefined> {
    if (await settlesWithin(this.exited, 0)) return undefined;
    const steps: [StopStep, () => Promise<unknown>, number][] = [
      [
        "powerdown",
        () => this.#qmp.execute("system_powerdown"),
        options.powerdownTimeout ?? 30_000,
      ],
      ["quit", () => this.#qmp.execute("quit"), options.quitTimeout ?? 5_000],
    ];
    const asked: Promise<unknown>[] = [];
    for (const [step, ask, timeout] of steps) {
      this.#stoppedBy = step;
      // Each step's time runs from the request, not from qemu's answer: a
      // qemu that does not answer must not stretch the ladder. A failed
      // command means qemu is going away anyway; the wait tells.
      asked.push(ask().catch(() => {}));
      if (await settlesWithin(this.exited, timeout)) {
        await Promise.all(asked);
        return step;
      }
    }
    this.#stoppedBy = "kill";
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Exited between the check and the kill.
    }
    await this.exited;
    await Promise.all(asked); // settled: the connection closed with qemu
    return "kill";
  }

  /**
   * Ties a helper process to this VM: it is stopped when qemu exits, and
   * `exited` resolves only after it has. A helper attached after qemu
   * exited is stopped at once.
   */
  attach(helper: Attached): void {
    this.#helpers.push(helper);
    if (this.#ended) helper.stop();
  }

  /** The QMP connection, for status queries. */
  get qmp(): QmpClient {
    return this.#qmp;
  }
}
