/**
 * One ephemeral VM for one command: fork the image, write the config disks
 * (the built-in template, with a job.sh that runs the command), boot, stream
 * the command's output, read its exit code, clean up. This is `forrest exec`
 * without the command line; the VM starts as `serve`'s do (launch/).
 */

import { getLogger } from "@logtape/logtape";
import type { Accel, ArtifactStoreConfig, Triplet } from "../config/mod.ts";
import { GuestApi, newRunToken } from "../guest_api/mod.ts";
import type { Secret } from "../log/mod.ts";
import { NO_RUNNER, readJobResult, renderSetupTemplate } from "../guest/mod.ts";
import type { CloneSetting } from "../images/mod.ts";
import {
  guestApiForward,
  launchVm,
  type MachineDevices,
  persistIfWanted,
  type PersistRule,
} from "../launch/mod.ts";
import { randomSuffix, RunDir } from "../run/mod.ts";
import type { DiskCache, Network, StopStep } from "../vm/mod.ts";
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
  readonly network: Network;
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
  /** Artifact stores the guest may upload to (exec --machine's). */
  readonly artifacts?: readonly ArtifactStoreConfig[];
  /** The run disk's cache mode (benchmarks compare them). */
  readonly diskCache?: DiskCache;
  /** A configured machine's devices (exec --machine's). */
  readonly devices?: MachineDevices;
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

const EXEC_TRIPLET: Triplet = {
  scope: { kind: "repository", owner: "local", repo: "exec" },
  machine: "exec",
};

export async function runEphemeral(
  options: EphemeralOptions,
): Promise<EphemeralResult> {
  const log = getLogger(["forrest", "exec"]);
  const runner = `exec-${randomSuffix()}`;
  const run = await RunDir.create(options.baseDir, EXEC_TRIPLET, runner);
  let outcome: EphemeralOutcome = "no-exit-code";
  // The same guest API as serve's, for this one run.
  const guestApi = new GuestApi();
  const runToken = newRunToken();
  guestApi.runs.add(runToken, runner, options.artifacts ?? []);
  try {
    await guestApi.listen();
    const { vm, fork, startedAt: started } = await launchVm({
      run,
      triplet: EXEC_TRIPLET,
      runner,
      image: options.image,
      cpus: options.cpus,
      ram: options.ram,
      disk: options.disk,
      accel: options.accel,
      clone: options.clone,
      network: {
        mode: options.network.mode,
        forwards: [
          ...options.network.forwards,
          guestApiForward(guestApi.port),
        ],
      },
      shared: options.devices?.shared ?? [],
      networkInterfaces: options.devices?.networkInterfaces ?? [],
      tpmState: options.devices?.tpmState,
      ...(options.diskCache ? { diskCache: options.diskCache } : {}),
      // No kernel cache: exec leaves nothing behind in base_dir.
      template: await jobTemplate(runner, runToken, options.command),
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
  } finally {
    await guestApi.close();
  }
}

/**
 * Keeps everything but the TPM state with --keep; keeps the logs of a run
 * that went wrong, so that its boot log can be read; removes a run that
 * went well.
 */
async function cleanUp(
  run: RunDir,
  keep: boolean,
  outcome: EphemeralOutcome,
): Promise<EphemeralResult["left"]> {
  if (keep) {
    // Sockets end with qemu; their folder is not in the run directory. The
    // TPM's copy holds the machine's keys: it goes even with --keep.
    await run.removeSockets();
    await run.removeTpmState();
    return "all";
  }
  if (outcome === "exited") {
    await run.remove();
    return "nothing";
  }
  await run.removeDisks();
  return "logs";
}

async function jobTemplate(
  runner: string,
  runToken: Secret,
  command: readonly string[],
) {
  const rendered = await renderSetupTemplate(undefined, {
    triplet: EXEC_TRIPLET,
    runner,
    forge: NO_RUNNER,
    runToken: runToken.reveal(),
  });
  return {
    cloudInit: rendered.cloudInit,
    jobConfig: new Map([
      ["job.sh", execJobScript(command)],
      ["run-token", rendered.jobConfig.get("run-token")!],
    ]),
  };
}
