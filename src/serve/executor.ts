/**
 * Carries out the core's decisions on real machines: registers runners with
 * the forge, forks disks and boots VMs through launch/, stops them when
 * killed, persists what the job asked for, deletes runners and run disks.
 * Every outcome goes back to the core as an event; nothing here decides.
 */

import { getLogger } from "@logtape/logtape";
import { errorText } from "../log/mod.ts";
import { tripletName } from "../config/mod.ts";
import {
  type Core,
  type Decision,
  type Machine,
  runnerLabels,
} from "../core/mod.ts";
import {
  forgeOfScope,
  type Forges,
  type RegisteredRunner,
  type RunnerJob,
} from "../forge/mod.ts";
import {
  fillSetupTemplate,
  readJobResult,
  readSetupTemplate,
  type SetupTemplateContent,
} from "../guest/mod.ts";
import {
  chooseImage,
  defragmentImage,
  imageFacts,
  machineImagePath,
  quarantineImage,
} from "../images/mod.ts";
import {
  guestApiForward,
  kernelCacheDir,
  lateJobDataSupported,
  type Launched,
  launchVm,
  machineTpmState,
  persistIfWanted,
} from "../launch/mod.ts";
import { type GuestApi, newRunToken } from "../guest_api/mod.ts";
import type { Secret } from "../log/mod.ts";
import { RUN_FILES, RunDir } from "../run/mod.ts";

export interface ExecutorDeps {
  readonly forges: Forges;
  readonly core: Core;
  /** Asks the daemon to plan again (something changed). */
  readonly wake: () => void;
  readonly now: () => number;
  /** How long a killed VM gets to power off before it is quit. */
  readonly powerdownTimeout?: number;
  /** Knows each machine's run token from creation until it stops. */
  readonly guestApi: Pick<GuestApi, "runs" | "port">;
}

/** What the executor knows about one machine while it works on it. */
interface Work {
  /** As the last decision about it said (a warm machine gets assigned). */
  machine: Machine;
  runner: RegisteredRunner | undefined;
  /** The forge call of a registration while it is under way. */
  registration: Promise<RegisteredRunner> | undefined;
  /** Resolves with the runner once one is registered. */
  readonly identity: PromiseWithResolvers<RegisteredRunner>;
  /** Whether a VM task runs (from the start decision until it ends). */
  vm: boolean;
  /** The image its VM booted, while it runs, for checkImages(). */
  booted: { readonly path: string; readonly identity: string } | undefined;
  ending: Promise<void> | undefined;
  killed: { readonly quarantine: boolean } | undefined;
  /** Its run directory, once made, for cleanup after an unexpected error. */
  run: RunDir | undefined;
  /** The run token the guest shows the guest API. */
  readonly runToken: Secret;
  /** Ends the token's life (the machine has stopped). */
  readonly forgetToken: () => void;
  readonly abort: AbortController;
  readonly tasks: Set<Promise<void>>;
}

export class Executor {
  readonly #deps: ExecutorDeps;
  readonly #work = new Map<number, Work>();
  readonly #log = getLogger(["forrest", "machine"]);
  /** Machine types told already that their image keeps no warm machines. */
  readonly #warmRefusalTold = new Set<string>();
  /** Rewrites of persisted images under way (images/defragment.ts). */
  readonly #compacting = new Set<Promise<unknown>>();
  readonly #stopCompacting = new AbortController();

  constructor(deps: ExecutorDeps) {
    this.#deps = deps;
  }

  execute(decision: Decision): void {
    switch (decision.kind) {
      case "register":
        return this.#register(decision.machine);
      case "start":
        return this.#start(decision.machine);
      case "kill":
        return this.#kill(
          decision.machine,
          decision.quarantine,
          decision.reason,
        );
      case "delete-runner":
        return this.#deleteOrphan(decision);
    }
  }

  /** Resolves when every machine's work has ended. */
  async settled(): Promise<void> {
    while (this.#work.size > 0) {
      await Promise.allSettled(
        [...this.#work.values()].flatMap((w) => [...w.tasks]),
      );
      // A machine that is only registered has no task to wait for.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    // Shutting down: a rewrite stops (its temp file goes at the next start).
    this.#stopCompacting.abort();
    await Promise.allSettled([...this.#compacting]);
  }

  /**
   * Warm machines whose image is no longer the one their type would boot
   * (a persist, a rebuild, a reload that changed it) are replaced.
   */
  async checkImages(): Promise<void> {
    const { core, now } = this.#deps;
    const spares = new Set(
      core.machines().filter((m) => !m.assigned && m.killed === undefined)
        .map((m) => m.id),
    );
    for (const work of this.#work.values()) {
      const { booted, machine } = work;
      if (booted === undefined || !spares.has(machine.id)) continue;
      const choice = chooseImage(
        machine.config.useBase,
        await imageFacts(
          machine.config,
          core.config.host.baseDir,
          (t) => core.isRunning(t),
        ),
      );
      const current = choice.kind === "start" ? choice.image : undefined;
      if (
        current === booted.path &&
        await identity(current) === booted.identity
      ) continue;
      const decision = core.imageChanged(machine.id, now());
      if (decision === undefined) continue;
      this.#log.info("{runner}: {image} changed since it booted", {
        runner: machine.runnerName,
        image: booted.path,
      });
      this.execute(decision);
    }
  }

  #workOf(machine: Machine): Work {
    const known = this.#work.get(machine.id);
    if (known !== undefined) {
      known.machine = machine;
      return known;
    }
    const runToken = newRunToken();
    const work: Work = {
      machine,
      runner: undefined,
      registration: undefined,
      identity: Promise.withResolvers(),
      vm: false,
      booted: undefined,
      ending: undefined,
      killed: undefined,
      run: undefined,
      runToken,
      forgetToken: this.#deps.guestApi.runs.add(
        runToken,
        machine.runnerName,
        machine.config.artifacts,
      ),
      abort: new AbortController(),
      tasks: new Set(),
    };
    // Nobody waits for the identity of a machine killed before it had one.
    work.identity.promise.catch(() => {});
    this.#work.set(machine.id, work);
    return work;
  }

  /**
   * The last `bytes` of a live machine's serial console log, with its
   * runner's identity and run token blanked out; undefined when no live
   * machine has this runner or its VM has not started.
   */
  async logTail(runner: string, bytes: number): Promise<string | undefined> {
    const work = [...this.#work.values()].find((w) =>
      w.machine.runnerName === runner
    );
    if (work?.run === undefined) return undefined;
    let text: string;
    try {
      using file = await Deno.open(`${work.run.path}/${RUN_FILES.log}`);
      const size = (await file.stat()).size;
      const start = Math.max(0, size - bytes);
      await file.seek(start, Deno.SeekMode.Start);
      const buffer = new Uint8Array(size - start);
      let read = 0;
      while (read < buffer.length) {
        const n = await file.read(buffer.subarray(read));
        if (n === null) break;
        read += n;
      }
      text = new TextDecoder().decode(buffer.subarray(0, read));
    } catch {
      return undefined;
    }
    const secrets = [
      work.runToken,
      ...Object.values(work.runner?.identity ?? {}),
    ].map((secret) => secret.reveal()).filter((value) => value.length >= 8);
    for (const secret of secrets) text = text.replaceAll(secret, "[secret]");
    return text;
  }

  #register(machine: Machine): void {
    const work = this.#workOf(machine);
    const { forges, core, now } = this.#deps;
    const labels = runnerLabels(machine.config);
    this.#track(work, async () => {
      try {
        const job = this.#jobOf(machine);
        work.registration = forgeOfScope(forges, machine.triplet.scope)
          .registerRunner(
            machine.triplet.scope,
            machine.runnerName,
            labels,
            machine.config.runnerGroup,
            job,
            machine.config.scaleSet,
          );
        work.runner = await work.registration;
        // Done: a kill from here on has no registration to wait for.
        work.registration = undefined;
      } catch (error) {
        work.registration = undefined;
        this.#log.error(
          "Cannot register runner {runner} for {machine}: {error}",
          {
            runner: machine.runnerName,
            machine: tripletName(machine.triplet),
            error: errorText(error),
          },
        );
        const kill = core.registerFailed(machine.id, now());
        if (kill) this.execute(kill);
        else if (!work.vm) await this.#end(work);
        return;
      }
      this.#log.info("Registered runner {runner} ({labels})", {
        runner: machine.runnerName,
        labels: labels.join(", "),
      });
      if (work.killed) {
        if (!work.vm) await this.#end(work);
        return;
      }
      core.registered(machine.id, work.runner.id, now());
      work.identity.resolve(work.runner);
    });
  }

  /** The job attempt a machine is made for, with its repository. */
  #jobOf(machine: Machine): RunnerJob | undefined {
    if (machine.forJob === undefined) return undefined;
    const job = this.#deps.core.jobs().find((j) =>
      j.key === machine.forJob!.key
    );
    // The job went meanwhile: the core kills this machine at its next plan.
    if (job === undefined) {
      throw new Error(`its job ${machine.forJob.handle} is gone`);
    }
    return {
      handle: machine.forJob.handle,
      repo: { owner: job.owner, repo: job.repo },
      labels: job.labels,
    };
  }

  #start(machine: Machine): void {
    const work = this.#workOf(machine);
    if (work.vm || work.killed) return;
    work.vm = true;
    this.#track(work, () => this.#runVm(work));
  }

  /**
   * The runner, once registered; undefined when the machine is killed
   * first.
   */
  #runnerOf(work: Work): Promise<RegisteredRunner | undefined> {
    if (work.runner) return Promise.resolve(work.runner);
    return Promise.race([
      work.identity.promise.catch(() => undefined),
      new Promise<undefined>((resolve) => {
        if (work.abort.signal.aborted) resolve(undefined);
        work.abort.signal.addEventListener(
          "abort",
          () => resolve(undefined),
          { once: true },
        );
      }),
    ]);
  }

  async #runVm(work: Work): Promise<void> {
    const { core, now } = this.#deps;
    const machine = work.machine;
    const config = core.config;
    const baseDir = config.host.baseDir;
    const choice = chooseImage(
      machine.config.useBase,
      await imageFacts(machine.config, baseDir, (t) => core.isRunning(t)),
    );
    // Killed while the image was looked at: nothing else will end it.
    if (killOf(work)) return await this.#end(work);
    if (choice.kind === "wait") {
      work.vm = false;
      if (core.imageWait(machine.id, choice.reason, choice.message, now())) {
        this.#log.info("{machine}: {message}", {
          machine: tripletName(machine.triplet),
          message: choice.message,
        });
      }
      return;
    }
    const scope = machine.triplet.scope;
    const template = await readSetupTemplate(
      machine.config.setupTemplate,
      scope,
    );
    const late = await lateJobDataSupported(choice.image, template.cloudInit);
    if (!late && !work.machine.assigned) return await this.#refuseWarm(work);
    // An image that cannot get JOBDATA after boot waits for its runner.
    const runner = late ? work.runner : await this.#runnerOf(work);
    if (killOf(work)) return await this.#end(work);
    const render = (runner: RegisteredRunner | undefined) =>
      fillSetupTemplate(template, machine.config.setupTemplate, {
        triplet: machine.triplet,
        runner: machine.runnerName,
        forge: runner === undefined ? {} : Object.fromEntries(
          Object.entries(runner.identity).map(([k, v]) => [k, v.reveal()]),
        ),
        runToken: work.runToken.reveal(),
      });
    // What the image is now, so that a timeout sets aside only this one
    // (another run may have persisted a new one meanwhile).
    const booted = await identity(choice.image);
    let run: RunDir | undefined;
    let launched: Launched | undefined;
    try {
      run = await RunDir.create(baseDir, machine.triplet, machine.runnerName);
      work.run = run;
      if (work.killed) return await this.#end(work, run);
      launched = await launchVm({
        run,
        triplet: machine.triplet,
        runner: machine.runnerName,
        image: choice.image,
        cpus: machine.config.cpus,
        ram: machine.config.ram,
        disk: machine.config.disk,
        accel: config.host.accel,
        clone: config.host.clone,
        network: {
          mode: machine.config.network,
          forwards: [
            ...machine.config.forwards,
            guestApiForward(this.#deps.guestApi.port),
          ],
        },
        shared: machine.config.shared,
        networkInterfaces: machine.config.networkInterfaces,
        tpmState: await machineTpmState(baseDir, machine.triplet),
        template: render(runner),
        lateJobData: runner === undefined,
        kernelCache: kernelCacheDir(baseDir),
      });
    } catch (error) {
      this.#log.error("Cannot start {runner} from {image}: {error}", {
        runner: machine.runnerName,
        image: choice.image,
        error: errorText(error),
      });
      core.vmEnded(machine.id, now());
      return await this.#end(work, run);
    }
    this.#log.info("Started {runner} from {image} (pid {pid})", {
      runner: machine.runnerName,
      image: choice.image,
      pid: launched.vm.pid,
    });
    core.vmStarted(machine.id, choice.image);
    if (booted !== undefined) {
      work.booted = { path: choice.image, identity: booted };
    }
    if (runner === undefined) this.#giveRunnerLater(work, launched, render);
    const killed = new Promise<void>((resolve) => {
      if (work.abort.signal.aborted) resolve();
      work.abort.signal.addEventListener("abort", () => resolve(), {
        once: true,
      });
    });
    await Promise.race([launched.vm.exited, killed]);
    const kill = killOf(work);
    if (kill) {
      await launched.vm.stop({
        // A killed machine's disk is thrown away: a short grace is enough.
        powerdownTimeout: this.#deps.powerdownTimeout ?? 2_000,
        quitTimeout: 5_000,
      });
    }
    const exit = await launched.vm.exited;
    work.booted = undefined;
    // The guest is gone: its token names nothing from now on.
    work.forgetToken();
    core.vmEnded(machine.id, now());
    this.#deps.wake();
    this.#log.info("{runner} stopped after {seconds} s (qemu exit {code})", {
      runner: machine.runnerName,
      seconds: Math.round((performance.now() - launched.startedAt) / 1000),
      code: exit.code,
    });
    const unchanged = booted !== undefined &&
      booted === await identity(choice.image);
    if (kill?.quarantine && choice.from === "own" && !unchanged) {
      this.#log.warn(
        "{runner} did not come online; {image} has been replaced since, and stays",
        { runner: machine.runnerName, image: choice.image },
      );
    } else if (kill?.quarantine && choice.from === "own") {
      const broken = await quarantineImage(choice.image).catch((error) => {
        this.#log.error("Cannot set {image} aside: {error}", {
          image: choice.image,
          error: errorText(error),
        });
      });
      if (broken) {
        this.#log.warn(
          "{runner} did not come online: its image is set aside as {broken}",
          { runner: machine.runnerName, broken },
        );
      }
    } else if (kill?.quarantine) {
      this.#log.warn(
        "{runner} did not come online from {image}, which is shared and stays",
        { runner: machine.runnerName, image: choice.image },
      );
    }
    let persisted: string | undefined;
    if (!kill && work.machine.assigned) {
      // The guest may have rewritten JOBDATA at will: one that cannot be
      // read within limits means no persist, and is worth a look.
      const result = await readJobResult(run.file("jobdata")).catch(
        (error) => {
          this.#log.warn(
            "Cannot read what {runner} left on its JOBDATA disk: {error}; its disk is not kept",
            { runner: machine.runnerName, error: errorText(error) },
          );
          return undefined;
        },
      );
      if (result) {
        const target = machineImagePath(baseDir, machine.triplet);
        const kept = await persistIfWanted(
          launched.fork,
          {
            target,
            token: machine.scopeConfig.persistenceToken,
            onSuccess: false,
          },
          result,
          machine.runnerName,
        ).catch((error) => {
          this.#log.error("Cannot persist {runner}: {error}", {
            runner: machine.runnerName,
            error: errorText(error),
          });
        });
        // Warm machines of its type (and of those based on it) booted the
        // image this run replaced.
        if (kept) {
          persisted = target;
          await this.checkImages();
        }
      }
    }
    await this.#end(work, run);
    if (persisted !== undefined) this.#compact(persisted);
  }

  /**
   * Rewrites a just-persisted image whose forks would be slow (too many
   * extents), after its run has ended: no job and no budget waits for it.
   */
  #compact(image: string): void {
    const task = defragmentImage(image, {
      signal: this.#stopCompacting.signal,
    });
    this.#compacting.add(task);
    task.finally(() => this.#compacting.delete(task));
  }

  /**
   * Once the guest says it waits, a warm machine is warm; once the runner
   * is registered (now, or when a job comes), its JOBDATA goes in.
   */
  #giveRunnerLater(
    work: Work,
    launched: Launched,
    render: (runner: RegisteredRunner) => SetupTemplateContent,
  ): void {
    const { core, now } = this.#deps;
    launched.ready.then((ready) => {
      if (!ready) return;
      const values = {
        runner: work.machine.runnerName,
        seconds: Math.round((performance.now() - launched.startedAt) / 100) /
          10,
      };
      if (work.runner === undefined) {
        this.#log.info(
          "{runner} booted in {seconds} s, waits for a job",
          values,
        );
      } else this.#log.info("{runner} booted in {seconds} s", values);
      core.guestReady(work.machine.id, now());
      this.#deps.wake();
    });
    this.#runnerOf(work).then(async (runner) => {
      if (runner === undefined || killOf(work)) return;
      // Not before the guest waits for it: a disk plugged while the guest's
      // kernel had not yet set up the port was never seen (a runner
      // registered within 20 ms of qemu's start). The job needs the booted
      // guest anyway.
      if (!(await launched.ready) || killOf(work)) return;
      try {
        await launched.giveJobData(render(runner));
        this.#log.info("Gave {runner} its JOBDATA (hot-plugged)", {
          runner: work.machine.runnerName,
        });
      } catch (error) {
        // Without its JOBDATA the guest would wait until its timeout.
        this.#log.error("Cannot give {runner} its JOBDATA: {error}", {
          runner: work.machine.runnerName,
          error: errorText(error),
        });
        await launched.vm.stop({ powerdownTimeout: 0, quitTimeout: 5_000 });
      }
    });
  }

  /** A warm machine of an image that cannot wait for its JOBDATA. */
  async #refuseWarm(work: Work): Promise<void> {
    const { machine } = work;
    const key = tripletName(machine.triplet);
    if (!this.#warmRefusalTold.has(key)) {
      this.#warmRefusalTold.add(key);
      this.#log.warn(
        "{machine} keeps no warm machines (min_idle): its image cannot get its job's JOBDATA after boot (build it again with forrest image build debian; cloud images and templates whose cloud-init/ names the runner cannot)",
        { machine: key },
      );
    }
    const decision = this.#deps.core.warmRefused(machine.id, this.#deps.now());
    if (decision) work.killed = { quarantine: false };
    work.vm = false;
    await this.#end(work);
  }

  #kill(machine: Machine, quarantine: boolean, reason: string): void {
    const work = this.#work.get(machine.id);
    if (work === undefined) return;
    this.#log.info("Killing {runner} ({reason})", {
      runner: machine.runnerName,
      reason,
    });
    work.killed = { quarantine };
    work.abort.abort();
    work.identity.reject(new Error("killed"));
    // Registration and VM tasks notice the kill themselves; a machine that
    // is only registered has nothing running to notice it.
    if (!work.vm && work.registration === undefined) {
      this.#track(work, () => this.#end(work));
    }
  }

  #deleteOrphan(decision: Extract<Decision, { kind: "delete-runner" }>) {
    Promise.resolve().then(() =>
      forgeOfScope(this.#deps.forges, decision.scope)
        .deleteRunner(decision.scope, decision.runnerId)
    ).then(
      () =>
        this.#log.info("Deleted leftover runner {runner}", {
          runner: decision.runnerName,
        }),
      (error) =>
        this.#log.warn("Cannot delete leftover runner {runner}: {error}", {
          runner: decision.runnerName,
          error: errorText(error),
        }),
    );
  }

  /**
   * The machine is done: runner deleted (once its registration, if one is
   * under way, has ended), run disk removed, core told. Once.
   */
  #end(work: Work, run?: RunDir): Promise<void> {
    work.ending ??= this.#ending(work, run ?? work.run);
    return work.ending;
  }

  async #ending(work: Work, run: RunDir | undefined): Promise<void> {
    const { machine } = work;
    const runner = work.runner ??
      await work.registration?.catch(() => undefined);
    if (runner) {
      const { scope } = machine.triplet;
      await Promise.resolve().then(() =>
        forgeOfScope(this.#deps.forges, scope).deleteRunner(scope, runner.id)
      ).catch((error) =>
        this.#log.warn("Cannot delete runner {runner}: {error}", {
          runner: machine.runnerName,
          error: errorText(error),
        })
      );
    }
    await run?.removeDisks().catch((error) =>
      this.#log.error("Cannot remove the disks of {runner}: {error}", {
        runner: machine.runnerName,
        error: errorText(error),
      })
    );
    this.#deps.core.stopped(machine.id, this.#deps.now());
    this.#finish(work);
  }

  #finish(work: Work): void {
    work.forgetToken();
    this.#work.delete(work.machine.id);
    this.#deps.wake();
  }

  /** Runs a machine's task; an unexpected error is logged, never thrown. */
  #track(work: Work, task: () => Promise<void>): void {
    const tracked = (async () => {
      try {
        await task();
      } catch (error) {
        this.#log.error("{runner}: {error}", {
          runner: work.machine.runnerName,
          error: errorText(error),
        });
        // Ended however #end fares: the token goes first.
        work.forgetToken();
        if (this.#work.has(work.machine.id)) await this.#end(work);
      } finally {
        this.#deps.wake();
      }
    })();
    work.tasks.add(tracked);
    tracked.finally(() => work.tasks.delete(tracked));
  }
}

/**
 * An image's size and mtime, or undefined when it is gone. Not its inode:
 * a rewrite that compacts it (images/defragment.ts) is a new file with the
 * same contents, size and mtime, and the same image to a run.
 */
async function identity(path: string): Promise<string | undefined> {
  try {
    const info = await Deno.stat(path);
    return `${info.size}:${info.mtime?.getTime()}`;
  } catch {
    return undefined;
  }
}

/** Read through a call: a kill arrives while a task awaits. */
function killOf(work: Work): Work["killed"] {
  return work.killed;
}
