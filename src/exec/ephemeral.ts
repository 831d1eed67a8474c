/**
 * One ephemeral VM for one command: fork the image, write the config disks
 * (the built-in template, with a job.sh that runs the command), boot, stream
 * the command's output, read its exit code, clean up. This is `forrest exec`
 * without the command line, and the same path `serve` takes for a job.
 */

import { basename, join } from "node:path";
import { getLogger } from "@logtape/logtape";
import type { Accel } from "../config/mod.ts";
import type { Secret } from "../log/mod.ts";
import {
  BUILTIN_TEMPLATE_DEFAULTS,
  BUILTIN_TEMPLATE_DIR,
  type JobResult,
  readJobResult,
  readTemplate,
  renderTemplate,
  writeConfigDisks,
} from "../guest/mod.ts";
import {
  type CloneSetting,
  DiskForker,
  type Fork,
  persistFork,
  tokenMatches,
} from "../images/mod.ts";
import { RUN_FILES, RunDir, runVmFiles } from "../run/mod.ts";
import {
  type Boot,
  buildQemuArgv,
  extractFile,
  findKernel,
  isExtFileSystem,
  kernelCommandLine,
  type Network,
  QemuVm,
  resolveAccelerator,
  type StopStep,
} from "../vm/mod.ts";
import { followFile } from "./follow.ts";
import { execJobScript } from "./job_script.ts";

export interface EphemeralOptions {
  readonly baseDir: string;
  readonly image: string;
  readonly command: readonly string[];
  readonly cpus: number;
  /** Bytes. */
  readonly ram: number;
  /** Bytes to grow the disk to; the image's size when undefined. */
  readonly disk: number | undefined;
  /** Milliseconds before the VM is stopped; none when undefined. */
  readonly timeout: number | undefined;
  /** Keep the run directory, disk included, for inspection. */
  readonly keep: boolean;
  readonly accel: Accel;
  readonly clone: CloneSetting;
  readonly network: Network["mode"];
  /** Receives the command's output (stdout and stderr together) as it comes. */
  readonly output: (chunk: Uint8Array) => void | Promise<void>;
  /** Receives the boot log as it comes (--verbose). */
  readonly bootLog?: (chunk: Uint8Array) => void | Promise<void>;
  /** Stops the VM early (Ctrl-C). */
  readonly signal?: AbortSignal;
  /** Called once qemu runs, with the run directory (tests attach a shell). */
  readonly onStarted?: (runDir: string, runner: string) => void;
  /** Where the disk goes when the run persists, and when it does. */
  readonly persist?: PersistRule;
}

export interface PersistRule {
  /** The machine image the run's disk replaces. */
  readonly target: string;
  /** The repository's token, which the job must write to config/persist. */
  readonly token: Secret | undefined;
  /** Persist whenever the command exits 0, token or not (exec --persist). */
  readonly onSuccess: boolean;
}

export type EphemeralOutcome =
  /** The command ran; exitCode is its exit code. */
  | "exited"
  /** The guest powered off without reporting an exit code. */
  | "no-exit-code"
  | "timeout"
  | "interrupted";

export interface EphemeralResult {
  readonly outcome: EphemeralOutcome;
  readonly exitCode: number | undefined;
  /** The step of the stop ladder that ended the VM, if Forrest stopped it. */
  readonly stoppedBy: StopStep | undefined;
  readonly runDir: string;
  /** What is left of the run directory: all of it, its logs, or nothing. */
  readonly left: "all" | "logs" | "nothing";
  /** Milliseconds from qemu's start to its exit. */
  readonly vmMilliseconds: number;
  /** The run's disk became the machine image. */
  readonly persisted: boolean;
}

const EXEC_TRIPLET = { owner: "local", repo: "exec", machine: "exec" };
const forker = new DiskForker();

export async function runEphemeral(
  options: EphemeralOptions,
): Promise<EphemeralResult> {
  const log = getLogger(["forrest", "exec"]);
  const runner = `exec-${randomSuffix()}`;
  const run = await RunDir.create(options.baseDir, EXEC_TRIPLET, runner);
  let outcome: EphemeralOutcome = "no-exit-code";
  try {
    const fork = await forker.fork(
      options.image,
      join(run.path, RUN_FILES.diskStem),
      {
        clone: options.clone,
        size: options.disk,
      },
    );
    log.debug("Forked {image} to {fork} ({method})", {
      image: options.image,
      fork: fork.path,
      method: fork.method,
    });
    await writeConfigDisks(
      { cidata: run.file("cidata"), jobdata: run.file("jobdata") },
      await jobTemplate(runner, options.command),
    );
    const boot = await chooseBoot(options.image, run);
    const accel = await resolveAccelerator(options.accel);
    const argv = buildQemuArgv({
      accel,
      cpus: options.cpus,
      ram: options.ram,
      files: runVmFiles(basename(fork.path), fork.format),
      boot,
      network: { mode: options.network, forwards: [] },
      shared: [],
    });
    log.debug("Starting qemu-system-x86_64 {argv}", { argv: argv.join(" ") });
    const started = performance.now();
    const vm = await QemuVm.start({
      argv,
      cwd: run.path,
      qmpSocket: run.file("qmpSocket"),
    });
    await run.writeRecord({
      triplet: EXEC_TRIPLET,
      runner,
      pid: vm.pid,
      startedAt: new Date().toISOString(),
    });
    options.onStarted?.(run.path, runner);

    const stopFollowing = new AbortController();
    const following = Promise.all([
      followFile(run.file("output"), options.output, stopFollowing.signal),
      options.bootLog &&
      followFile(run.file("log"), options.bootLog, stopFollowing.signal),
    ]);
    const interrupted = new Promise<"interrupted">((resolve) => {
      if (options.signal?.aborted) resolve("interrupted");
      options.signal?.addEventListener("abort", () => resolve("interrupted"), {
        once: true,
      });
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      if (options.timeout !== undefined) {
        timer = setTimeout(() => resolve("timeout"), options.timeout);
      }
    });
    const first = await Promise.race([
      vm.exited.then(() => "exited" as const),
      interrupted,
      timedOut,
    ]);
    clearTimeout(timer);
    let stoppedBy: StopStep | undefined;
    if (first !== "exited") {
      log.debug("Stopping the VM: {why}", { why: first });
      // A job that overran or was interrupted gets a short grace for a clean
      // power-off; a hung guest ignores it and is quit.
      stoppedBy = await vm.stop({
        powerdownTimeout: 3_000,
        quitTimeout: 5_000,
      });
    }
    const exit = await vm.exited;
    const vmMilliseconds = Math.round(performance.now() - started);
    stopFollowing.abort();
    await following;
    log.debug("qemu exited with {code} after {ms} ms", {
      code: exit.code,
      ms: vmMilliseconds,
    });

    const result = await readJobResult(run.file("jobdata")).catch(() =>
      undefined
    );
    outcome = first !== "exited"
      ? first
      : result?.exitCode === undefined
      ? "no-exit-code"
      : "exited";
    if (outcome === "no-exit-code" && exit.stderr.trim()) {
      log.error("qemu: {stderr}", { stderr: exit.stderr.trim() });
    }
    const persisted = outcome === "exited" && options.persist !== undefined &&
      await persistIfWanted(fork, options.persist, result!, runner);
    return {
      outcome,
      exitCode: result?.exitCode,
      stoppedBy,
      runDir: run.path,
      left: await cleanUp(run, options.keep, outcome),
      vmMilliseconds,
      persisted,
    };
  } catch (error) {
    await cleanUp(run, options.keep, "no-exit-code");
    throw error;
  }
}

/**
 * Persists the run's disk when the rule says so. A `persist` file that does
 * not hold the token is logged (never the token itself) and ignored.
 */
async function persistIfWanted(
  fork: Fork,
  rule: PersistRule,
  result: JobResult,
  runner: string,
): Promise<boolean> {
  const log = getLogger(["forrest", "persist"]);
  const tokenOk = await tokenMatches(result.persist, rule.token);
  if (result.persist !== undefined && !tokenOk) {
    log.warn(
      "Run {runner} wrote a persist file that does not hold the repository's " +
        "persistence token; its disk is not kept",
      { runner },
    );
  }
  if (!tokenOk && !(rule.onSuccess && result.exitCode === 0)) return false;
  await persistFork(fork, rule.target);
  log.info("Run {runner} persisted its disk as {image}", {
    runner,
    image: rule.target,
  });
  return true;
}

/**
 * Keeps everything with --keep; keeps the logs of a run that went wrong, so
 * that its boot log can be read; removes a run that went well.
 */
async function cleanUp(
  run: RunDir,
  keep: boolean,
  outcome: EphemeralOutcome,
): Promise<EphemeralResult["left"]> {
  if (keep) return "all";
  if (outcome === "exited") {
    await run.remove();
    return "nothing";
  }
  await run.removeDisks();
  return "logs";
}

async function jobTemplate(runner: string, command: readonly string[]) {
  const template = await readTemplate(BUILTIN_TEMPLATE_DIR);
  const rendered = renderTemplate(template, {
    ...BUILTIN_TEMPLATE_DEFAULTS,
    REPO_OWNER: EXEC_TRIPLET.owner,
    REPO_NAME: EXEC_TRIPLET.repo,
    MACHINE_NAME: EXEC_TRIPLET.machine,
    RUNNER_NAME: runner,
    JITCONFIG: "",
  });
  return {
    cloudInit: rendered.cloudInit,
    jobConfig: new Map([["job.sh", execJobScript(command)]]),
  };
}

/**
 * Direct kernel boot for a bare ext4 image (kernel and initrd copied out of
 * it into the run directory), firmware boot for anything else.
 */
async function chooseBoot(image: string, run: RunDir): Promise<Boot> {
  if (!(await isExtFileSystem(image))) return { kind: "firmware" };
  const files = await findKernel(image);
  if (!files) {
    throw new Error(
      `Image "${image}" is a bare ext4 file system with no /boot/vmlinuz-*: it cannot boot`,
    );
  }
  await extractFile(image, files.kernel, run.file("kernel"));
  if (files.initrd) await extractFile(image, files.initrd, run.file("initrd"));
  return {
    kind: "kernel",
    kernel: RUN_FILES.kernel,
    initrd: files.initrd ? RUN_FILES.initrd : undefined,
    append: kernelCommandLine(),
  };
}

/** 16 random lower-case letters and digits, as runner names use. */
export function randomSuffix(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}
