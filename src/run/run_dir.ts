/**
 * A run directory: `runs/<owner>/<repo>/<machine>/<runner>/` under base_dir,
 * holding everything of one VM: its forked disk, config disks, boot log,
 * sockets, and a record of the qemu process for crash recovery. The disk is
 * removed when the run ends; the logs stay.
 */

import { join } from "node:path";
import {
  checkMachineName,
  checkOwnerName,
  checkRepoName,
  type Triplet,
} from "../config/mod.ts";

/** File names inside a run directory; qemu runs with it as its cwd. */
export const RUN_FILES = Object.freeze({
  cidata: "cidata.img",
  jobdata: "jobdata.img",
  log: "log.txt",
  output: "output.txt",
  shellSocket: "shell.sock",
  qmpSocket: "qmp.sock",
  kernel: "vmlinuz",
  initrd: "initrd.img",
  record: "run.json",
  diskStem: "disk",
});

/**
 * The files of a run directory as qemu's command line names them (qemu runs
 * in the run directory), for buildQemuArgv().
 */
export function runVmFiles(disk: string, diskFormat: "raw" | "qcow2") {
  return {
    disk,
    diskFormat,
    cidata: RUN_FILES.cidata,
    jobdata: RUN_FILES.jobdata,
    log: RUN_FILES.log,
    shellSocket: RUN_FILES.shellSocket,
    qmpSocket: RUN_FILES.qmpSocket,
    output: RUN_FILES.output,
  };
}

/** Linux limits Unix socket paths to 108 bytes, the final NUL included. */
const MAX_SOCKET_PATH = 107;

const RUNNER_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** What runs in a run directory, for whoever finds it after a crash. */
export interface RunRecord {
  readonly triplet: Triplet;
  readonly runner: string;
  readonly pid: number;
  /** ISO 8601. */
  readonly startedAt: string;
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
  const problem = checkOwnerName(triplet.owner) ??
    checkRepoName(triplet.repo) ??
    checkMachineName(triplet.machine) ?? checkRunnerName(runner);
  if (problem) throw new RunDirError(problem);
  return join(
    baseDir,
    "runs",
    triplet.owner,
    triplet.repo,
    triplet.machine,
    runner,
  );
}

export class RunDir {
  readonly path: string;

  private constructor(path: string) {
    this.path = path;
  }

  /**
   * Creates the run directory (mode 0700; it will hold a JIT config).
   *
   * @throws {RunDirError} for a bad name, a path too long for the sockets,
   *   or a run directory that exists already
   */
  static async create(
    baseDir: string,
    triplet: Triplet,
    runner: string,
  ): Promise<RunDir> {
    const path = runDirPath(baseDir, triplet, runner);
    const socket = join(path, RUN_FILES.shellSocket);
    if (new TextEncoder().encode(socket).length > MAX_SOCKET_PATH) {
      throw new RunDirError(
        `Run directory "${path}" is too long for Unix sockets (at most ` +
          `${MAX_SOCKET_PATH} bytes for ${socket}): choose a shorter base_dir`,
      );
    }
    await Deno.mkdir(join(path, ".."), { recursive: true });
    try {
      await Deno.mkdir(path, { mode: 0o700 });
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) {
        throw new RunDirError(`Run directory "${path}" exists already`);
      }
      throw error;
    }
    await Deno.chmod(path, 0o700); // mkdir's mode is subject to the umask
    return new RunDir(path);
  }

  /** A run directory that exists (for `forrest shell` and recovery). */
  static open(path: string): RunDir {
    return new RunDir(path);
  }

  file(name: keyof typeof RUN_FILES): string {
    return join(this.path, RUN_FILES[name]);
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
   * the kernel and initrd copies, config disks and sockets. The logs and the
   * record stay for debugging.
   */
  async removeDisks(): Promise<void> {
    for (const entry of await Array.fromAsync(Deno.readDir(this.path))) {
      const keep = [
        RUN_FILES.log,
        RUN_FILES.output,
        RUN_FILES.record,
        "qemu.log",
      ];
      if (!keep.includes(entry.name)) {
        await Deno.remove(join(this.path, entry.name), { recursive: true })
          .catch((error) => {
            if (!(error instanceof Deno.errors.NotFound)) throw error;
          });
      }
    }
  }

  /**
   * Removes the whole run directory, and the machine, repository and owner
   * folders above it when that leaves them empty.
   */
  async remove(): Promise<void> {
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
