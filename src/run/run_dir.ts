/**
 * A run directory: `runs/<owner>/<repo>/<machine>/<runner>/` under base_dir,
 * holding everything of one VM: its forked disk, config disks, boot log,
 * and a record of the qemu process for crash recovery. Its Unix sockets sit
 * in a short folder of their own (socket_dir.ts), linked from the run
 * directory as `sockets`. The disk and the sockets are removed when the run
 * ends; the logs stay.
 */

import { join, relative, resolve } from "node:path";
import type { HelperRecord } from "../vm/mod.ts";
import {
  checkTripletNames,
  scopeSegments,
  type Triplet,
} from "../config/mod.ts";
import {
  checkSocketBaseDir,
  RUN_SOCKETS,
  type RunSocket,
  runSocketDir,
} from "./socket_dir.ts";

/**
 * File names inside a run directory; qemu runs with it as its cwd. Sockets
 * go in RUN_SOCKETS (socket_dir.ts), never here: a run directory can be far
 * too deep for them.
 */
export const RUN_FILES = Object.freeze({
  cidata: "cidata.img",
  jobdata: "jobdata.img",
  log: "log.txt",
  output: "output.txt",
  kernel: "vmlinuz",
  initrd: "initrd.img",
  record: "run.json",
  diskStem: "disk",
  /** A link to the run's socket folder, for people debugging it. */
  socketLink: "sockets",
  /** The run's copy of its machine's TPM state: removed with the disk. */
  tpmState: "tpm.swtpm",
  tpmLog: "tpm.log",
});

/** What a finished run keeps: logs and the record, for debugging. */
export const KEPT_RUN_FILES: ReadonlySet<string> = new Set([
  RUN_FILES.log,
  RUN_FILES.output,
  RUN_FILES.record,
  RUN_FILES.tpmLog,
  "qemu.log",
]);

const RUNNER_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** What runs in a run directory, for whoever finds it after a crash. */
export interface RunRecord {
  readonly triplet: Triplet;
  readonly runner: string;
  /** qemu's; absent while helpers that start before it (swtpm) come up. */
  readonly pid?: number;
  /** ISO 8601. */
  readonly startedAt: string;
  /** Processes beside qemu (the network helper), to stop after a crash. */
  readonly helpers?: readonly HelperRecord[];
}

/** Why a run directory cannot be made. */
export class RunDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunDirError";
  }
}

export function checkRunnerName(name: string): string | undefined {
  return RUNNER_RE.test(name)
    ? undefined
    : `"${name}" is not a valid runner name ` +
      '(1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit)';
}

/**
 * The run directory's path, after checking every name that goes into it.
 *
 * @throws {RunDirError} for a name that is not safe in a path
 */
export function runDirPath(
  baseDir: string,
  triplet: Triplet,
  runner: string,
): string {
  const problem = checkTripletNames(triplet) ?? checkRunnerName(runner);
  if (problem) throw new RunDirError(problem);
  return join(
    baseDir,
    "runs",
    ...scopeSegments(triplet.scope),
    triplet.machine,
    runner,
  );
}

export class RunDir {
  /** Absolute. */
  readonly path: string;
  /** The folder of the run's Unix sockets, `BASE/sockets/<16 hex>`. */
  readonly socketDir: string;

  private constructor(path: string) {
    this.path = resolve(path);
    this.socketDir = runSocketDir(this.path);
  }

  /**
   * Creates the run directory and its socket folder (both mode 0700; the
   * run directory will hold a JIT config).
   *
   * @throws {RunDirError} for a bad name, a base_dir too long for the
   *   sockets, or a run directory that exists already
   */
  static async create(
    baseDir: string,
    triplet: Triplet,
    runner: string,
  ): Promise<RunDir> {
    const problem = checkSocketBaseDir(baseDir);
    if (problem) throw new RunDirError(`Base directory ${problem}`);
    const run = new RunDir(runDirPath(resolve(baseDir), triplet, runner));
    // Owner, repository and runner names are nobody else's business (the
    // API socket's group can pass base_dir).
    await Deno.mkdir(join(run.path, ".."), { recursive: true, mode: 0o700 });
    try {
      await Deno.mkdir(run.path, { mode: 0o700 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new RunDirError(`Run directory "${run.path}" exists already`);
      }
      throw error;
    }
    try {
      await Deno.chmod(run.path, 0o700); // mkdir's mode is subject to the umask
      await run.#createSocketDir();
    } catch (error) {
      await run.remove().catch(() => {});
      throw error;
    }
    return run;
  }

  /** A run directory that exists (for `forrest shell` and recovery). */
  static open(path: string): RunDir {
    return new RunDir(path);
  }

  file(name: keyof typeof RUN_FILES): string {
    return join(this.path, RUN_FILES[name]);
  }

  /** The absolute path of one of the run's sockets: short whatever the names. */
  socket(name: RunSocket): string {
    return join(this.socketDir, RUN_SOCKETS[name]);
  }

  /**
   * The files of the run as qemu's command line names them, for
   * buildQemuArgv(): files of the run directory by their names (qemu runs
   * in it), sockets by their absolute, short paths.
   */
  vmFiles(disk: string, diskFormat: "raw" | "qcow2") {
    return {
      disk,
      diskFormat,
      cidata: RUN_FILES.cidata,
      jobdata: RUN_FILES.jobdata,
      log: RUN_FILES.log,
      shellSocket: this.socket("shell"),
      qmpSocket: this.socket("qmp"),
      output: RUN_FILES.output,
    };
  }

  async #createSocketDir(): Promise<void> {
    // The run directory is new, so a folder of the same name is a leftover
    // of an earlier run of the same name (its run directory removed by hand).
    await this.removeSockets();
    await Deno.mkdir(join(this.socketDir, ".."), { recursive: true });
    await Deno.mkdir(this.socketDir, { mode: 0o700 });
    await Deno.chmod(this.socketDir, 0o700);
    await Deno.symlink(
      relative(this.path, this.socketDir),
      this.file("socketLink"),
    );
  }

  /**
   * Removes the socket folder and the link to it: qemu has gone, and its
   * sockets with it. Nothing happens when they are gone already.
   */
  async removeSockets(): Promise<void> {
    for (const path of [this.socketDir, this.file("socketLink")]) {
      await removeTree(path);
    }
  }

  /** Removes the run's copy of its machine's TPM state (its keys). */
  removeTpmState(): Promise<void> {
    return removeTree(this.file("tpmState"));
  }

  /** Writes the record atomically: a crash leaves the old one or the new one. */
  async writeRecord(record: RunRecord): Promise<void> {
    const temp = `${this.file("record")}.tmp`;
    await Deno.writeTextFile(temp, `${JSON.stringify(record, null, 2)}\n`);
    await Deno.rename(temp, this.file("record"));
  }

  async readRecord(): Promise<RunRecord | undefined> {
    try {
      return JSON.parse(await Deno.readTextFile(this.file("record")));
    } catch (error) {
      if (
        error instanceof Deno.errors.NotFound || error instanceof SyntaxError
      ) return undefined;
      throw error;
    }
  }

  /**
   * Removes what a finished run no longer needs: its disk (the large part),
   * the kernel and initrd copies, config disks, TPM state and sockets. The
   * logs and the record stay for debugging.
   */
  async removeDisks(): Promise<void> {
    await this.removeSockets();
    for (const entry of await Array.fromAsync(Deno.readDir(this.path))) {
      if (!KEPT_RUN_FILES.has(entry.name)) {
        await removeTree(join(this.path, entry.name));
      }
    }
  }

  /**
   * Removes the whole run directory, and the machine, repository and owner
   * folders above it when that leaves them empty.
   */
  async remove(): Promise<void> {
    await this.removeSockets();
    await Deno.remove(this.path, { recursive: true });
    let dir = this.path;
    for (let level = 0; level < 3; level++) {
      dir = join(dir, "..");
      try {
        await Deno.remove(dir); // only succeeds when empty
      } catch {
        return;
      }
    }
  }
}

/** Removes a file or folder; nothing happens when it is gone already. */
async function removeTree(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}
