/**
 * Crash recovery at start: what an earlier Forrest left when it died. Its
 * VMs may still run (qemu does not die with its parent): each run
 * directory's record names the qemu process, which is stopped (QMP quit,
 * then SIGKILL) if it is still there. Run disks are deleted, logs kept.
 * Half-done persists leave at most a temp file beside the machine image,
 * never a torn image; the temp file goes.
 */

import { join } from "node:path";
import { getLogger } from "@logtape/logtape";
import { scopeOf, type Triplet } from "../config/mod.ts";
import { removePersistLeftovers } from "../images/mod.ts";
import { KEPT_RUN_FILES, RunDir } from "../run/mod.ts";
import { QmpClient, stopLeftoverHelper } from "../vm/mod.ts";

/** A run an earlier Forrest left unfinished. */
export interface RecoveredRun {
  readonly triplet: Triplet;
  readonly runner: string;
  readonly path: string;
  /** Its qemu was still running and has been stopped. */
  readonly stoppedPid: number | undefined;
}

export async function recoverRuns(baseDir: string): Promise<RecoveredRun[]> {
  const log = getLogger(["forrest", "recovery"]);
  const recovered: RecoveredRun[] = [];
  for (const dir of await runDirs(join(baseDir, "runs"))) {
    const entries = await Array.fromAsync(Deno.readDir(dir.path));
    const run = RunDir.open(dir.path);
    const record = await run.readRecord();
    const pid = record?.pid;
    const alive = pid !== undefined && await isQemuIn(pid, dir.path);
    // Anything but what a finished run keeps means it did not finish.
    const unfinished = entries.some((e) => !KEPT_RUN_FILES.has(e.name));
    if (!alive && !unfinished) continue;
    if (alive) {
      log.warn("Stopping qemu {pid} of {runner}, left by an earlier Forrest", {
        pid,
        runner: dir.runner,
      });
      await stopQemu(pid!, run.socket("qmp"), dir.path);
    }
    // After qemu: a network helper outlives the VM it served.
    for (const helper of record?.helpers ?? []) {
      await stopLeftoverHelper(helper);
    }
    await run.removeDisks();
    recovered.push({
      triplet: dir.triplet,
      runner: dir.runner,
      path: dir.path,
      stoppedPid: alive ? pid : undefined,
    });
  }
  const machines = join(baseDir, "machines");
  for (const folder of await subfolders(machines, 2)) {
    for (const name of await removePersistLeftovers(folder)) {
      log.warn("Removed {file}, left by a persist that did not finish", {
        file: join(folder, name),
      });
    }
  }
  if (recovered.length) {
    log.info("Cleaned up {count} run(s) of an earlier Forrest", {
      count: recovered.length,
    });
  }
  return recovered;
}

interface FoundRunDir {
  readonly path: string;
  readonly triplet: Triplet;
  readonly runner: string;
}

/**
 * `runs/<owner>/<repo>/<machine>/<runner>/` folders (and `runs/orgs/…`,
 * `runs/enterprises/…`: every scope is two segments deep).
 */
async function runDirs(runs: string): Promise<FoundRunDir[]> {
  const found: FoundRunDir[] = [];
  for (const path of await subfolders(runs, 4)) {
    const [first, second, machine, runner] = path.slice(runs.length + 1)
      .split("/");
    found.push({
      path,
      triplet: { scope: scopeOf(first!, second!), machine: machine! },
      runner: runner!,
    });
  }
  return found;
}

/** Folders exactly `depth` levels below `root` (none if it is missing). */
async function subfolders(root: string, depth: number): Promise<string[]> {
  let level = [root];
  for (let i = 0; i < depth; i++) {
    const next: string[] = [];
    for (const dir of level) {
      try {
        for await (const entry of Deno.readDir(dir)) {
          if (entry.isDirectory) next.push(join(dir, entry.name));
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    level = next;
  }
  return level.sort();
}

/**
 * Whether `pid` is a qemu running in `dir`: a recorded pid may have been
 * reused by an unrelated process since, which must not be touched.
 */
async function isQemuIn(pid: number, dir: string): Promise<boolean> {
  try {
    const cwd = await Deno.readLink(`/proc/${pid}/cwd`);
    const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    // The kernel shows the resolved path; base_dir may go through a link.
    const real = await Deno.realPath(dir);
    return cwd === real && cmdline.split("\0")[0]!.includes("qemu");
  } catch {
    return false;
  }
}

/** QMP quit (a clean exit), else SIGKILL; waits until the process is gone. */
async function stopQemu(pid: number, qmpSocket: string, dir: string) {
  try {
    const qmp = await QmpClient.connect(qmpSocket, { timeout: 2_000 });
    await qmp.execute("quit").catch(() => {});
    await qmp.close();
  } catch {
    // No QMP: SIGKILL below.
  }
  for (let i = 0; i < 50 && await isQemuIn(pid, dir); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (await isQemuIn(pid, dir)) {
    Deno.kill(pid, "SIGKILL");
    for (let i = 0; i < 50 && await isQemuIn(pid, dir); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
