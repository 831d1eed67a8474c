/**
 * The heart of `forrest serve`, pure and synchronous: events come in (job
 * reports, runner lists, what happened to a machine, the clock), decisions
 * go out (register a runner, start a VM, kill a machine, delete an orphan
 * runner). It does no I/O and reads no clock, so every rule of product.md
 * §1 and §3 is tested as a table with fake time.
 */

import {
  allMachines,
  type Config,
  forgeOf,
  type MachineConfig,
  type Scope,
  type Triplet,
  tripletName,
} from "../config/mod.ts";
import {
  type JobChange,
  jobKey,
  type JobListing,
  type JobReport,
  JobTracker,
  type TrackedJob,
} from "./jobs.ts";
import { isServed, machineForJob, sameName, tripletKey } from "./labels.ts";
import {
  holdsBudget,
  isAvailable,
  isSpare,
  KILL_ORDER,
  type KillReason,
  type Machine,
  type MachineState,
} from "./machine.ts";

export interface CoreOptions {
  /**
   * While the budget cannot take every queued job, demand settles once no
   * job changed for this long (ms), so that the largest go first.
   */
  readonly debounce: number;
  /** ...or at the latest this long after the first unsettled change (ms). */
  readonly maxDebounce: number;
  /** A machine that waits for its image tries again after this long (ms). */
  readonly imageRetry: number;
  /** First delay after a machine of a type failed to start (ms), doubling. */
  readonly failureBackoff: number;
  readonly maxFailureBackoff: number;
  /** The random part of runner names. */
  readonly randomSuffix: () => string;
}

export const DEFAULT_CORE_OPTIONS: Omit<CoreOptions, "randomSuffix"> = {
  debounce: 5_000,
  maxDebounce: 30_000,
  imageRetry: 30_000,
  failureBackoff: 10_000,
  maxFailureBackoff: 5 * 60_000,
};

export type Decision =
  /**
   * Register a just-in-time runner for the machine; its guest gets the
   * runner's identity once both this and its boot are done. For a warm
   * machine: the job has come.
   */
  | { readonly kind: "register"; readonly machine: Machine }
  /**
   * Fork its disk and boot its VM: the budget has room. A machine without
   * a runner yet (`assigned` false) is a warm one.
   */
  | { readonly kind: "start"; readonly machine: Machine }
  /**
   * Stop the machine: its VM if it has one, then delete its runner if it has
   * one, and move its image aside when `quarantine` is set.
   */
  | {
    readonly kind: "kill";
    readonly machine: Machine;
    readonly reason: KillReason;
    readonly quarantine: boolean;
  }
  /** A `forrest-*` runner that no machine owns, offline and idle. */
  | {
    readonly kind: "delete-runner";
    readonly scope: Scope;
    readonly runnerId: number;
    readonly runnerName: string;
  };

/** A runner as the forge lists it. */
export interface RunnerReport {
  readonly id: number;
  readonly name: string;
  readonly online: boolean;
  readonly busy: boolean;
}

/** Measurements for /metrics, in seconds. */
export interface Observations {
  /** A job queued until one of our runners took it. */
  readonly pickup: number[];
  /** A VM started until its runner was online (or took a job). */
  readonly boot: number[];
}

export interface StatusMachine {
  readonly triplet: string;
  readonly runner: string;
  readonly state: MachineState;
  /** The image its VM started from, once it started. */
  readonly image: string | null;
  readonly since: string;
  readonly job: number | null;
  /** Why it is not started yet, or why it is being stopped. */
  readonly note: string | null;
  readonly ram: number;
  readonly cpus: number;
}

export interface StatusJob {
  readonly id: number;
  readonly triplet: string;
  readonly status: string;
  readonly runner: string | null;
  readonly since: string;
}

/** A machine that is gone, with how long it took to get its job. */
export interface StatusRecent {
  readonly triplet: string;
  readonly runner: string;
  readonly job: number | null;
  readonly image: string | null;
  /** Seconds from the job queued to the runner taking it. */
  readonly pickup: number | null;
  /** Seconds from the VM's start to its runner online (or warm). */
  readonly boot: number | null;
  readonly started: string | null;
  readonly ended: string;
  /** Why it was stopped, when it was (not after its job). */
  readonly killed: string | null;
}

/** A scale-set machine type, as its scale set's statistics last said. */
export interface StatusScaleSet {
  readonly triplet: string;
  readonly name: string;
  /** Jobs assigned to it: waiting for a runner, or running. */
  readonly assigned: number;
  readonly running: number;
  /** The most machines of the type the budget takes now (sent to GitHub). */
  readonly capacity: number;
}

export interface Status {
  readonly machines: StatusMachine[];
  readonly jobs: StatusJob[];
  /** Machine types whose jobs come through runner scale sets. */
  readonly scaleSets: StatusScaleSet[];
  /** The last machines that are gone, newest first. */
  readonly recent: StatusRecent[];
  readonly budget: {
    readonly ram: { readonly used: number; readonly total: number };
    readonly cpus: { readonly used: number; readonly total: number | null };
  };
}

/**
 * Whether two machine configs make the same VM: a reload makes new
 * objects of unchanged ones. Secrets compare as equal (guest API tokens
 * live on the host, not in the VM).
 */
function sameConfig(a: MachineConfig, b: MachineConfig): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** What status says of a warm machine on its way. */
function warmNote(machine: Machine): string | null {
  if (machine.assigned || machine.state === "warm") return null;
  return machine.state === "requested"
    ? "warm machine, waiting for RAM and CPUs no job needs"
    : "warm machine, booting";
}

/** A machine's record as the core keeps it; callers see it read-only. */
type MachineRecord = { -readonly [K in keyof Machine]: Machine[K] };

const RUNNER_PREFIX = "forrest-";
/** Gone machines kept for status. */
const RECENT_KEPT = 20;
/** Warm machines from least to most worth keeping. */
const SPARE_ORDER: readonly MachineState[] = ["requested", "starting", "warm"];
/** How long a runner may look idle after its job was seen running (ms). */
const TAKEN_GRACE = 60_000;

export class Core {
  #config: Config;
  readonly #options: CoreOptions;
  readonly #jobs = new JobTracker();
  readonly #machines = new Map<number, MachineRecord>();
  #nextId = 1;
  /** When a job last changed, and when the first change not yet planned for. */
  #lastJobChange: number | undefined;
  #firstUnsettled: number | undefined;
  /** Consecutive failures per triplet key, and when the next try may be. */
  readonly #failures = new Map<string, { count: number; until: number }>();
  /** Machines whose failure is counted already (vmEnded, then stopped). */
  readonly #countedFailures = new Set<number>();
  readonly #observations: Observations = { pickup: [], boot: [] };
  readonly #bootObserved = new WeakSet<MachineRecord>();
  /** Machines the executor has had a decision of (a kill must reach it). */
  readonly #told = new Set<number>();
  /**
   * Machine types whose image cannot keep warm machines (no late JOBDATA),
   * until this time: told once, tried again later (the image may change).
   */
  readonly #warmRefused = new Map<string, number>();
  #shuttingDown = false;
  /** The last machines that are gone, newest first (for status). */
  readonly #recent: StatusRecent[] = [];
  /**
   * Jobs assigned to each scale-set machine type (waiting or running) and
   * running, by triplet key, as its statistics last said (product.md §16).
   */
  readonly #scaleSetCounts = new Map<
    string,
    { readonly assigned: number; readonly running: number }
  >();

  constructor(config: Config, options: CoreOptions) {
    this.#config = config;
    this.#options = options;
  }

  get config(): Config {
    return this.#config;
  }

  /** New machines use the new config; machines that exist keep theirs. */
  setConfig(config: Config, now: number): void {
    this.#config = config;
    this.#jobs.remap((job) => machineForJob(config, job, job.labels)?.triplet);
    this.#jobChanged(now);
  }

  // --- Jobs ---------------------------------------------------------------

  /** A job report from a webhook or a poll. */
  jobReported(reported: JobReport, now: number): JobChange {
    const report = this.#jobs.withEarlier(reported);
    const machine = machineForJob(this.#config, report, report.labels);
    const change = this.#jobs.report(report, machine?.triplet, now);
    if (change.kind !== "none") this.#jobChanged(now);
    if (report.status === "in_progress") {
      // Forgejo does not say which runner took a job; its handle does.
      const runner = report.runnerName ??
        this.#byJob(jobKey(report))?.runnerName;
      if (runner !== undefined) {
        this.#runnerBusy(runner, now, report.id, jobKey(report));
      }
    }
    return change;
  }

  /**
   * A poll that started at `startedAt` listed these jobs of a repository
   * (or of all an owner's repositories): they are the truth; tracked jobs
   * it did not list and that nothing mentioned since are dropped. Returns
   * what changed (webhooks missed, or the news of a forge without them).
   */
  pollFinished(
    listing: JobListing,
    reports: readonly JobReport[],
    startedAt: number,
    now: number,
  ): JobChange[] {
    const changes = this.jobsListed(reports, startedAt, now)
      .filter((change) => change.kind !== "none");
    const listed = new Set(reports.map(jobKey));
    const dropped = this.#jobs.forgetUnlisted(listing, listed, startedAt);
    if (dropped.length) this.#jobChanged(now);
    return [
      ...changes,
      ...dropped.map((job) => ({ kind: "dropped" as const, job })),
    ];
  }

  /**
   * Jobs that a listing started at `startedAt` showed, each reported as a
   * webhook's would be; nothing unlisted is dropped (the quick poll lists
   * only what changed). A webhook that came while it ran is newer.
   */
  jobsListed(
    reports: readonly JobReport[],
    startedAt: number,
    now: number,
  ): JobChange[] {
    return reports.filter((report) =>
      (this.#jobs.get(jobKey(report))?.updatedAt ?? -Infinity) < startedAt
    ).map((report) => this.jobReported(report, now));
  }

  /**
   * A scale set's statistics, for the machine type it serves: the jobs
   * assigned to it and not yet running are that type's demand, in place
   * of counted jobs (GitHub says which jobs are this host's; messages are
   * not counted: a reassigned job comes back as new ones).
   */
  scaleSetStatistics(
    triplet: Triplet,
    statistics: { readonly assigned: number; readonly running: number },
    now: number,
  ): void {
    const key = tripletKey(triplet);
    const before = this.#waiting(key);
    this.#scaleSetCounts.set(key, {
      assigned: statistics.assigned,
      running: statistics.running,
    });
    if (this.#waiting(key) !== before) this.#jobChanged(now);
  }

  /** A scale-set type's jobs assigned and not yet running: its demand. */
  #waiting(key: string): number | undefined {
    const counts = this.#scaleSetCounts.get(key);
    return counts && Math.max(0, counts.assigned - counts.running);
  }

  /**
   * A runner of a scale set took a job (its JobStarted message), queued
   * at `queuedAt` if the message said.
   */
  runnerStarted(
    runnerName: string,
    queuedAt: number | undefined,
    now: number,
  ): void {
    const machine = this.#byRunner(runnerName);
    if (machine === undefined) return;
    if (!machine.ranJob && queuedAt !== undefined && queuedAt <= now) {
      machine.pickupSeconds = (now - queuedAt) / 1000;
      this.#observations.pickup.push(machine.pickupSeconds);
    }
    this.#runnerBusy(runnerName, now, undefined, undefined);
  }

  /**
   * How many machines of a scale-set type this host could have at once:
   * those it has, and those the budget left by other work would take
   * (warm machines give way). Sent as the scale set's max capacity, so
   * that GitHub assigns this host no more jobs than that.
   */
  scaleSetCapacity(triplet: Triplet): number {
    const key = tripletKey(triplet);
    const config = this.#configsByKey().get(key);
    if (config === undefined) return 0;
    const mine = (m: MachineRecord) =>
      tripletKey(m.triplet) === key && m.assigned && m.killed === undefined &&
      m.state !== "stopping";
    const used = this.#budgetUsed((m) => !isSpare(m) && !mine(m));
    const { ram, cpus } = this.#config.host;
    const more = Math.min(
      Math.floor((ram - used.ram) / config.ram),
      cpus === undefined
        ? Infinity
        : Math.floor((cpus - used.cpus) / config.cpus),
    );
    return Math.max(0, more);
  }

  /**
   * Demand per triplet key: queued jobs, or for a scale set's type the
   * jobs assigned to it and not yet running.
   */
  #demand(): Map<string, number> {
    const demand = this.#jobs.queuedBy(tripletKey);
    for (const config of allMachines(this.#config)) {
      if (config.scaleSet === undefined) continue;
      const key = tripletKey(config.triplet);
      demand.set(key, this.#waiting(key) ?? 0);
    }
    return demand;
  }

  #jobChanged(now: number): void {
    this.#lastJobChange = now;
    this.#firstUnsettled ??= now;
  }

  // --- Runners ------------------------------------------------------------

  /**
   * The runners of a scope as the forge lists them: online and busy move
   * our machines along; `forrest-*` runners that no machine owns and that
   * are offline and idle are left over from a crash and get deleted.
   */
  runnersListed(
    scope: Scope,
    runners: readonly RunnerReport[],
    now: number,
  ): Decision[] {
    const decisions: Decision[] = [];
    for (const runner of runners) {
      const machine = this.#byRunner(runner.name);
      if (machine !== undefined) {
        if (runner.busy) {
          this.#runnerBusy(runner.name, now, undefined, undefined);
        } else if (this.#lostItsJob(machine, now)) {
          const decision = this.#kill(machine, "surplus", now);
          if (decision) decisions.push(decision);
        } else if (runner.online) this.#runnerOnline(machine, now);
        continue;
      }
      if (
        runner.name.startsWith(RUNNER_PREFIX) && !runner.online && !runner.busy
      ) {
        decisions.push({
          kind: "delete-runner",
          scope,
          runnerId: runner.id,
          runnerName: runner.name,
        });
      }
    }
    return decisions;
  }

  /**
   * A machine made for one job that Forgejo listed as running, whose runner
   * is still not busy a while later: another runner (one without a handle)
   * took the job, and this one would wait for it forever. Forgejo shows a
   * runner active while it works a task (it reports every second).
   */
  #lostItsJob(machine: MachineRecord, now: number): boolean {
    return machine.forJob !== undefined && machine.state === "running" &&
      machine.killed === undefined && now - machine.since >= TAKEN_GRACE;
  }

  #runnerOnline(machine: MachineRecord, now: number): void {
    if (machine.state !== "starting" || machine.killed || !machine.assigned) {
      return;
    }
    this.#observeBoot(machine, now);
    this.#setState(machine, "waiting", now);
    this.#failures.delete(tripletKey(machine.triplet));
  }

  #runnerBusy(
    runnerName: string,
    now: number,
    jobId: number | undefined,
    key: string | undefined,
  ) {
    const machine = this.#byRunner(runnerName);
    if (machine === undefined) return;
    if (jobId !== undefined && machine.jobId === undefined) {
      machine.jobId = jobId;
      const job = key === undefined ? undefined : this.#jobs.get(key);
      if (job) {
        machine.pickupSeconds = (now - job.queuedAt) / 1000;
        this.#observations.pickup.push(machine.pickupSeconds);
      }
    }
    machine.ranJob = true;
    if (machine.state === "starting" || machine.state === "waiting") {
      if (machine.state === "starting") this.#observeBoot(machine, now);
      this.#setState(machine, "running", now);
      this.#failures.delete(tripletKey(machine.triplet));
    }
  }

  /** Once per machine: when it came online, or a warm one got ready. */
  #observeBoot(machine: MachineRecord, now: number): void {
    if (machine.startedAt !== undefined && !this.#bootObserved.has(machine)) {
      this.#bootObserved.add(machine);
      machine.bootSeconds = (now - machine.startedAt) / 1000;
      this.#observations.boot.push(machine.bootSeconds);
    }
  }

  // --- What happened to a machine (reported by the executor) --------------

  registered(id: number, runnerId: number, now: number): void {
    const machine = this.#machines.get(id);
    if (machine === undefined) return;
    machine.runnerId = runnerId;
    if (machine.state === "registering") {
      this.#setState(machine, "registered", now);
    }
  }

  /**
   * Registration failed: its type backs off. A machine without a VM is
   * gone; one whose VM started meanwhile is killed (the executor reports
   * it stopped).
   */
  registerFailed(id: number, now: number): Decision | undefined {
    const machine = this.#machines.get(id);
    if (machine === undefined) return undefined;
    // A machine killed meanwhile was not wanted anyway: no backoff.
    if (machine.killed === undefined) this.#failed(machine, now);
    if (machine.startedAt !== undefined) {
      return this.#kill(machine, "register-failed", now);
    }
    this.#machines.delete(id);
    this.#told.delete(id);
    this.#countedFailures.delete(id);
    return undefined;
  }

  /**
   * The guest booted and waits for JOBDATA: a warm machine is warm now. A
   * machine with a runner comes online soon after.
   */
  guestReady(id: number, now: number): void {
    const machine = this.#machines.get(id);
    if (machine === undefined || machine.killed !== undefined) return;
    machine.ready = true;
    if (!machine.assigned && machine.state === "starting") {
      this.#observeBoot(machine, now);
      this.#setState(machine, "warm", now);
      this.#failures.delete(tripletKey(machine.triplet));
    }
  }

  /**
   * The image a warm machine booted is no longer the one its type would
   * boot (a persist, a rebuild, its base's new image): it makes way for one
   * that boots the new image.
   */
  imageChanged(id: number, now: number): Decision | undefined {
    const machine = this.#machines.get(id);
    if (machine === undefined || !isSpare(machine)) return undefined;
    return this.#kill(machine, "stale-image", now);
  }

  /**
   * The image of a warm machine cannot get its JOBDATA after boot (an
   * image of an older Forrest, a cloud image, a template whose cloud-init
   * needs the runner): the machine goes, and its type keeps no warm
   * machines for a while. Jobs still get machines, the serial way.
   */
  warmRefused(id: number, now: number): Decision | undefined {
    const machine = this.#machines.get(id);
    if (machine === undefined) return undefined;
    this.#warmRefused.set(
      tripletKey(machine.triplet),
      now + this.#options.maxFailureBackoff,
    );
    return this.#kill(machine, "surplus", now);
  }

  /**
   * The image this machine would start from is not there yet, or its base
   * machine is running: back to `registered` until something changes.
   * Returns true when this is news (the caller logs it once).
   */
  imageWait(id: number, reason: string, message: string, now: number) {
    const machine = this.#machines.get(id);
    if (machine === undefined || machine.state !== "starting") return false;
    const news = machine.wait?.message !== message;
    machine.wait = { reason, message, until: now + this.#options.imageRetry };
    machine.startedAt = undefined;
    machine.timeoutFrom = undefined;
    this.#setState(
      machine,
      !machine.assigned
        ? "requested"
        : machine.runnerId === undefined
        ? "registering"
        : "registered",
      now,
    );
    return news;
  }

  /** The VM started from this image. */
  vmStarted(id: number, image: string): void {
    const machine = this.#machines.get(id);
    if (machine !== undefined) machine.image = image;
  }

  /** The VM ended (or never started): its cleanup is under way. */
  vmEnded(id: number, now: number): void {
    const machine = this.#machines.get(id);
    if (machine === undefined || machine.state === "stopping") return;
    if (!machine.ranJob && machine.killed === undefined) {
      this.#failed(machine, now);
    }
    this.#setState(machine, "stopping", now);
  }

  /** Cleanup is done: the machine is gone. */
  stopped(id: number, now: number): void {
    const machine = this.#machines.get(id);
    if (machine === undefined) return;
    if (!machine.ranJob && machine.killed === undefined) {
      this.#failed(machine, now);
    }
    const iso = (t: number) => new Date(t).toISOString();
    this.#recent.unshift({
      triplet: tripletName(machine.triplet),
      runner: machine.runnerName,
      job: machine.jobId ?? null,
      image: machine.image ?? null,
      pickup: machine.pickupSeconds ?? null,
      boot: machine.bootSeconds ?? null,
      started: machine.startedAt === undefined ? null : iso(machine.startedAt),
      ended: iso(now),
      killed: machine.killed ?? null,
    });
    this.#recent.splice(RECENT_KEPT);
    this.#machines.delete(id);
    this.#told.delete(id);
    this.#countedFailures.delete(id);
    // A machine that waited for this one (its base) may start now.
    for (const other of this.#machines.values()) {
      if (other.wait !== undefined) other.wait = { ...other.wait, until: now };
    }
  }

  #failed(machine: MachineRecord, now: number): void {
    if (this.#countedFailures.has(machine.id)) return;
    this.#countedFailures.add(machine.id);
    const key = tripletKey(machine.triplet);
    const count = (this.#failures.get(key)?.count ?? 0) + 1;
    const delay = Math.min(
      this.#options.maxFailureBackoff,
      this.#options.failureBackoff * 2 ** (count - 1),
    );
    this.#failures.set(key, { count, until: now + delay });
  }

  // --- Planning -----------------------------------------------------------

  /**
   * Kills machines past their start timeout, settles demand into assigned
   * warm machines, new machines and surplus kills (at once while the
   * budget takes every queued job, after the debounce while it cannot),
   * keeps each type's warm machines, and starts what the budget allows:
   * machines for jobs first, largest first; warm ones from what is left.
   */
  tick(now: number): Decision[] {
    const decisions: Decision[] = [];
    for (const machine of this.#machines.values()) {
      const from = machine.timeoutFrom ?? machine.startedAt;
      if (
        machine.state === "starting" && machine.killed === undefined &&
        from !== undefined && now - from >= machine.config.startTimeout
      ) {
        const decision = this.#kill(machine, "start-timeout", now);
        if (decision) decisions.push(decision);
      }
    }
    if (!this.#shuttingDown && this.#demandSettled(now)) {
      this.#firstUnsettled = undefined;
      decisions.push(...this.#planDemand(now));
    }
    if (!this.#shuttingDown) decisions.push(...this.#planWarm(now));
    decisions.push(...this.#planStarts(now));
    return decisions;
  }

  /**
   * The debounce only orders work the budget cannot all take at once
   * (largest first, once all jobs of a workflow are in); when it can take
   * everything queued, waiting gains nothing.
   */
  #demandSettled(now: number): boolean {
    if (this.#firstUnsettled === undefined) return true;
    if (!this.#contended()) return true;
    return now - this.#lastJobChange! >= this.#options.debounce ||
      now - this.#firstUnsettled >= this.#options.maxDebounce;
  }

  /**
   * Whether the machines queued jobs need, with those waiting to start,
   * exceed the budget that is free or held by warm machines (which give
   * way).
   */
  #contended(): boolean {
    const need = this.#queuedNeed();
    const used = this.#budgetUsed((m) => !isSpare(m));
    const { ram, cpus } = this.#config.host;
    return used.ram + need.ram > ram ||
      (cpus !== undefined && used.cpus + need.cpus > cpus);
  }

  /**
   * RAM and CPUs of machines with a job that are not started yet, and of
   * the new ones queued jobs need beyond the machines there are (warm ones
   * count as there: they take the job).
   */
  #queuedNeed(): { ram: number; cpus: number } {
    const need = { ram: 0, cpus: 0 };
    const add = (config: MachineConfig, n = 1) => {
      need.ram += config.ram * n;
      need.cpus += config.cpus * n;
    };
    for (const machine of this.#machines.values()) {
      if (machine.assigned && isAvailable(machine) && !holdsBudget(machine)) {
        add(machine.config);
      }
    }
    const configs = this.#configsByKey();
    const demand = this.#demand();
    for (const [key, wanted] of demand) {
      const config = configs.get(key);
      if (config === undefined || forgeOf(config.triplet.scope) !== undefined) {
        continue;
      }
      const have = this.#count(
        (m) =>
          tripletKey(m.triplet) === key && m.forJob === undefined &&
          ((m.assigned && isAvailable(m)) || isSpare(m)),
      );
      if (wanted > have) add(config, wanted - have);
    }
    const covered = new Set<string>();
    for (const machine of this.#machines.values()) {
      if (machine.forJob && !machine.killed) covered.add(machine.forJob.key);
    }
    const spares = this.#sparesByKey();
    for (const job of this.#jobs.queued()) {
      if (job.handle === undefined || covered.has(job.key)) continue;
      const key = tripletKey(job.triplet);
      const config = configs.get(key);
      if (config === undefined) continue;
      if ((spares.get(key)?.length ?? 0) > 0) spares.get(key)!.pop();
      else add(config);
    }
    return need;
  }

  #planDemand(now: number): Decision[] {
    const decisions: Decision[] = [];
    const demand = this.#demand();
    const available = new Map<string, MachineRecord[]>();
    for (const machine of this.#machines.values()) {
      if (
        !isAvailable(machine) || !machine.assigned ||
        machine.forJob !== undefined
      ) continue;
      const key = tripletKey(machine.triplet);
      available.set(key, [...(available.get(key) ?? []), machine]);
    }
    const spares = this.#sparesByKey();
    for (const config of allMachines(this.#config)) {
      if (forgeOf(config.triplet.scope) !== undefined) continue;
      const key = tripletKey(config.triplet);
      const wanted = demand.get(key) ?? 0;
      const have = available.get(key)?.length ?? 0;
      if (wanted > have && this.#mayCreate(key, now)) {
        for (let i = have; i < wanted; i++) {
          const spare = spares.get(key)?.shift();
          decisions.push(
            spare
              ? this.#assign(spare, undefined, now)
              : this.#create(config, undefined, true, now)!,
          );
        }
      }
    }
    decisions.push(...this.#planJobMachines(spares, now));
    for (const [key, machines] of available) {
      const surplus = machines.length - (demand.get(key) ?? 0);
      if (surplus <= 0) continue;
      const cheapest = machines.toSorted((a, b) =>
        KILL_ORDER.indexOf(a.state) - KILL_ORDER.indexOf(b.state) ||
        b.id - a.id
      );
      for (const machine of cheapest.slice(0, surplus)) {
        const decision = this.#kill(machine, "surplus", now);
        if (decision) decisions.push(decision);
      }
    }
    return decisions;
  }

  #mayCreate(key: string, now: number): boolean {
    const failure = this.#failures.get(key);
    return failure === undefined || failure.until <= now;
  }

  /**
   * Machines made for one job attempt each (Forgejo): one per queued job
   * that has none (a warm machine of its type if there is one); one whose
   * job is no longer queued (cancelled, taken, gone) is killed before it
   * takes anything, as its runner would wait for that job forever.
   */
  #planJobMachines(
    spares: Map<string, MachineRecord[]>,
    now: number,
  ): Decision[] {
    const decisions: Decision[] = [];
    const queued = new Map<string, TrackedJob>();
    for (const job of this.#jobs.queued()) {
      if (job.handle !== undefined) queued.set(job.key, job);
    }
    const covered = new Set<string>();
    for (const machine of this.#machines.values()) {
      if (machine.forJob === undefined || machine.killed !== undefined) {
        continue;
      }
      // A machine that took its job covers it too: the runner list may say
      // so before the next listing of jobs does.
      if (queued.has(machine.forJob.key)) covered.add(machine.forJob.key);
      else if (isAvailable(machine)) {
        const decision = this.#kill(machine, "surplus", now);
        if (decision) decisions.push(decision);
      }
    }
    const configs = this.#configsByKey();
    for (const job of queued.values()) {
      const key = tripletKey(job.triplet);
      const config = configs.get(key);
      if (covered.has(job.key) || !config || !this.#mayCreate(key, now)) {
        continue;
      }
      const forJob = { key: job.key, handle: job.handle! };
      const spare = spares.get(key)?.shift();
      decisions.push(
        spare
          ? this.#assign(spare, forJob, now)
          : this.#create(config, forJob, true, now)!,
      );
    }
    return decisions;
  }

  /**
   * Keeps `min_idle` warm machines per type: new ones are requested (and
   * started by #planStarts from budget no job needs); more than that, after
   * a reload lowered it, are killed.
   */
  #planWarm(now: number): Decision[] {
    const decisions: Decision[] = [];
    const spares = this.#sparesByKey();
    for (const config of allMachines(this.#config)) {
      const key = tripletKey(config.triplet);
      const have = spares.get(key) ?? [];
      const refused = (this.#warmRefused.get(key) ?? -Infinity) > now;
      const wanted = refused ? 0 : config.minIdle;
      if (have.length < wanted && this.#mayCreate(key, now)) {
        for (let i = have.length; i < wanted; i++) {
          this.#create(config, undefined, false, now);
        }
      }
      // Least far along first: a booted warm machine is worth keeping.
      const cheapest = have.toSorted((a, b) =>
        SPARE_ORDER.indexOf(a.state) - SPARE_ORDER.indexOf(b.state) ||
        b.id - a.id
      );
      for (
        const machine of cheapest.slice(0, Math.max(0, have.length - wanted))
      ) {
        const decision = this.#kill(machine, "surplus", now);
        if (decision) decisions.push(decision);
      }
    }
    // Warm machines of types the config no longer has, or has changed:
    // a job would get the machine of the old config.
    const configs = this.#configsByKey();
    for (const [key, machines] of spares) {
      const current = configs.get(key);
      for (const machine of machines) {
        if (current !== undefined && sameConfig(current, machine.config)) {
          continue;
        }
        const decision = this.#kill(
          machine,
          current === undefined ? "surplus" : "stale-image",
          now,
        );
        if (decision) decisions.push(decision);
      }
    }
    return decisions;
  }

  /** Warm machines per type, booted ones first, then oldest first. */
  #sparesByKey(): Map<string, MachineRecord[]> {
    const spares = new Map<string, MachineRecord[]>();
    const sorted = [...this.#machines.values()].filter(isSpare).sort((a, b) =>
      SPARE_ORDER.indexOf(b.state) - SPARE_ORDER.indexOf(a.state) ||
      a.id - b.id
    );
    for (const machine of sorted) {
      const key = tripletKey(machine.triplet);
      spares.set(key, [...(spares.get(key) ?? []), machine]);
    }
    return spares;
  }

  #configsByKey(): Map<string, MachineConfig> {
    return new Map(
      allMachines(this.#config).map((c) => [tripletKey(c.triplet), c]),
    );
  }

  #count(predicate: (machine: MachineRecord) => boolean): number {
    let n = 0;
    for (const machine of this.#machines.values()) if (predicate(machine)) n++;
    return n;
  }

  /** A warm machine gets a runner: the job has come. */
  #assign(
    machine: MachineRecord,
    forJob: Machine["forJob"],
    now: number,
  ): Decision {
    machine.assigned = true;
    machine.forJob = forJob;
    if (machine.state === "warm") {
      // From here it must come online like any machine, within its timeout.
      machine.timeoutFrom = now;
      this.#setState(machine, "starting", now);
    } else if (machine.state === "requested") {
      this.#setState(machine, "registering", now);
    }
    this.#told.add(machine.id);
    return { kind: "register", machine: { ...machine } };
  }

  /**
   * A new machine: one for a job registers its runner at once (and starts
   * as soon as the budget allows, while it registers); a warm one waits in
   * `requested` for #planStarts.
   */
  #create(
    config: MachineConfig,
    forJob: Machine["forJob"],
    assigned: boolean,
    now: number,
  ): Decision | undefined {
    const scopeConfig = this.#config.scopes.find((s) =>
      s.machines.includes(config)
    )!;
    const machine: MachineRecord = {
      id: this.#nextId++,
      triplet: config.triplet,
      config,
      scopeConfig,
      forJob,
      runnerName:
        `${RUNNER_PREFIX}${config.triplet.machine}-${this.#options.randomSuffix()}`,
      runnerId: undefined,
      state: "requested",
      since: now,
      createdAt: now,
      startedAt: undefined,
      killed: undefined,
      wait: undefined,
      jobId: undefined,
      ranJob: false,
      assigned,
      ready: false,
      timeoutFrom: undefined,
    };
    this.#machines.set(machine.id, machine);
    if (!assigned) return undefined;
    this.#setState(machine, "registering", now);
    this.#told.add(machine.id);
    return { kind: "register", machine: { ...machine } };
  }

  #planStarts(now: number): Decision[] {
    const used = this.#budgetUsed();
    const { ram, cpus } = this.#config.host;
    const waitOver = (m: MachineRecord) =>
      m.wait === undefined || m.wait.until <= now;
    const bySize = (a: MachineRecord, b: MachineRecord) =>
      b.config.ram - a.config.ram || b.config.cpus - a.config.cpus ||
      a.id - b.id;
    const fits = (m: MachineRecord, reserve = { ram: 0, cpus: 0 }) =>
      used.ram + reserve.ram + m.config.ram <= ram &&
      (cpus === undefined || used.cpus + reserve.cpus + m.config.cpus <= cpus);
    const decisions: Decision[] = [];
    const start = (machine: MachineRecord) => {
      used.ram += machine.config.ram;
      used.cpus += machine.config.cpus;
      machine.startedAt = now;
      machine.timeoutFrom = now;
      this.#setState(machine, "starting", now);
      this.#told.add(machine.id);
      decisions.push({ kind: "start", machine: { ...machine } });
    };
    // Machines for jobs start while their runners register.
    const forJobs = [...this.#machines.values()]
      .filter((m) =>
        m.assigned && m.killed === undefined && waitOver(m) &&
        (m.state === "registering" || m.state === "registered")
      )
      .sort(bySize);
    const short = forJobs.filter((machine) => {
      if (!fits(machine)) return true;
      start(machine);
      return false;
    });
    if (short.length > 0) {
      decisions.push(...this.#makeRoom(short, used, now));
      return decisions;
    }
    // Warm machines from what jobs queued now (but not yet planned, while
    // the debounce runs) will not need.
    const reserve = this.#queuedNeed();
    const warm = [...this.#machines.values()]
      .filter((m) => isSpare(m) && m.state === "requested" && waitOver(m))
      .sort(bySize);
    for (const machine of warm) if (fits(machine, reserve)) start(machine);
    return decisions;
  }

  /**
   * Machines for jobs do not fit: warm machines give way, cheapest first,
   * until what they free (with what is being freed) makes room for all.
   */
  #makeRoom(
    short: readonly MachineRecord[],
    used: { ram: number; cpus: number },
    now: number,
  ): Decision[] {
    const need = {
      ram: short.reduce((sum, m) => sum + m.config.ram, 0),
      cpus: short.reduce((sum, m) => sum + m.config.cpus, 0),
    };
    const { ram, cpus } = this.#config.host;
    const freeing = this.#budgetUsed((m) => m.killed !== undefined);
    const free = {
      ram: ram - used.ram + freeing.ram,
      cpus: (cpus ?? Infinity) - used.cpus + freeing.cpus,
    };
    const decisions: Decision[] = [];
    const holders = [...this.#machines.values()]
      .filter((m) => isSpare(m) && holdsBudget(m))
      .sort((a, b) =>
        SPARE_ORDER.indexOf(a.state) - SPARE_ORDER.indexOf(b.state) ||
        b.id - a.id
      );
    for (const holder of holders) {
      if (free.ram >= need.ram && free.cpus >= need.cpus) break;
      const decision = this.#kill(holder, "make-room", now);
      if (decision) decisions.push(decision);
      free.ram += holder.config.ram;
      free.cpus += holder.config.cpus;
    }
    return decisions;
  }

  /** RAM and CPUs of the machines that hold budget (those that match). */
  #budgetUsed(
    which: (machine: MachineRecord) => boolean = () => true,
  ): { ram: number; cpus: number } {
    let ram = 0;
    let cpus = 0;
    for (const machine of this.#machines.values()) {
      if (!holdsBudget(machine) || !which(machine)) continue;
      ram += machine.config.ram;
      cpus += machine.config.cpus;
    }
    return { ram, cpus };
  }

  /**
   * Kills a machine: one the executor was never told of just goes; any
   * other gets a kill decision and is `stopping` until the executor
   * reports it stopped.
   */
  #kill(
    machine: MachineRecord,
    reason: KillReason,
    now: number,
  ): Decision | undefined {
    if (machine.killed !== undefined || machine.state === "stopping") {
      return undefined;
    }
    machine.killed = reason;
    if (!this.#told.has(machine.id)) {
      this.#machines.delete(machine.id);
      this.#told.delete(machine.id);
      return undefined;
    }
    const quarantine = reason === "start-timeout";
    // A machine that never came online is a failure of its type: the next
    // one waits a little, in case the image is broken.
    if (quarantine) this.#failed(machine, now);
    this.#setState(machine, "stopping", now);
    return { kind: "kill", machine: { ...machine }, reason, quarantine };
  }

  /** Forrest shuts down: no new machines; kill those without a job. */
  shutdown(now: number): Decision[] {
    this.#shuttingDown = true;
    const decisions: Decision[] = [];
    for (const machine of this.#machines.values()) {
      if (machine.state === "running") continue;
      const decision = this.#kill(machine, "shutdown", now);
      if (decision) decisions.push(decision);
    }
    return decisions;
  }

  /** Kills every machine, running ones too (the shutdown timeout passed). */
  killAll(now: number): Decision[] {
    this.#shuttingDown = true;
    const decisions: Decision[] = [];
    for (const machine of this.#machines.values()) {
      const decision = this.#kill(machine, "shutdown", now);
      if (decision) decisions.push(decision);
    }
    return decisions;
  }

  #setState(machine: MachineRecord, state: MachineState, now: number): void {
    if (machine.state === state) return;
    machine.state = state;
    machine.since = now;
  }

  // --- Reading ------------------------------------------------------------

  /** When tick() has something to do next, if anything. */
  nextWake(now: number): number | undefined {
    const times: number[] = [];
    if (this.#firstUnsettled !== undefined) {
      times.push(
        Math.min(
          this.#lastJobChange! + this.#options.debounce,
          this.#firstUnsettled + this.#options.maxDebounce,
        ),
      );
    }
    for (const machine of this.#machines.values()) {
      const from = machine.timeoutFrom ?? machine.startedAt;
      if (machine.state === "starting" && from !== undefined) {
        times.push(from + machine.config.startTimeout);
      }
      // An expired wait is due at the next plan anyway; counting it here
      // would wake the loop at once, over and over, while the budget is full.
      if (
        (machine.state === "registered" || machine.state === "registering" ||
          machine.state === "requested") &&
        machine.wait &&
        machine.wait.until > now
      ) {
        times.push(machine.wait.until);
      }
    }
    const demand = this.#demand();
    const spares = this.#sparesByKey();
    const minIdle = new Map(
      allMachines(this.#config).map((c) => [tripletKey(c.triplet), c.minIdle]),
    );
    const short = (key: string) =>
      (minIdle.get(key) ?? 0) > (spares.get(key)?.length ?? 0);
    for (const [key, failure] of this.#failures) {
      if (failure.until > now && ((demand.get(key) ?? 0) > 0 || short(key))) {
        times.push(failure.until);
      }
    }
    for (const [key, until] of this.#warmRefused) {
      if (until > now && (minIdle.get(key) ?? 0) > 0) times.push(until);
    }
    const future = times.map((t) => Math.max(t, now));
    return future.length ? Math.min(...future) : undefined;
  }

  machines(): Machine[] {
    return [...this.#machines.values()].map((m) => ({ ...m }));
  }

  /**
   * Whether a machine of this triplet runs a VM that may persist (its
   * image may change). Warm machines have no job, and persist nothing.
   */
  isRunning(triplet: Machine["triplet"]): boolean {
    const key = tripletKey(triplet);
    return [...this.#machines.values()].some((m) =>
      tripletKey(m.triplet) === key && holdsBudget(m) && m.assigned
    );
  }

  jobs() {
    return this.#jobs.all();
  }

  /**
   * Whether a configured scope serves this job, with what earlier reports
   * said of it (a repository hook's delivery does not name the enterprise
   * whose delivery matched the job).
   */
  serves(report: JobReport): boolean {
    return isServed(this.#config, this.#jobs.withEarlier(report));
  }

  /** Takes the measurements made since the last call. */
  drainObservations(): Observations {
    const taken = {
      pickup: this.#observations.pickup.splice(0),
      boot: this.#observations.boot.splice(0),
    };
    return taken;
  }

  status(): Status {
    const used = this.#budgetUsed();
    const iso = (t: number) => new Date(t).toISOString();
    return {
      machines: [...this.#machines.values()].map((m) => ({
        triplet: tripletName(m.triplet),
        runner: m.runnerName,
        state: m.state,
        image: m.image ?? null,
        since: iso(m.since),
        job: m.jobId ?? null,
        note: m.killed !== undefined
          ? `killed: ${m.killed}`
          : m.wait?.message ?? warmNote(m),
        ram: m.config.ram,
        cpus: m.config.cpus,
      })),
      jobs: this.#jobs.all().map((j) => ({
        id: j.id,
        triplet: tripletName(j.triplet),
        status: j.status,
        runner: j.runnerName,
        since: iso(j.since),
      })),
      recent: [...this.#recent],
      scaleSets: allMachines(this.#config).flatMap((config) => {
        if (config.scaleSet === undefined) return [];
        const counts = this.#scaleSetCounts.get(tripletKey(config.triplet));
        return [{
          triplet: tripletName(config.triplet),
          name: config.scaleSet,
          assigned: counts?.assigned ?? 0,
          running: counts?.running ?? 0,
          capacity: this.scaleSetCapacity(config.triplet),
        }];
      }),
      budget: {
        ram: { used: used.ram, total: this.#config.host.ram },
        cpus: { used: used.cpus, total: this.#config.host.cpus ?? null },
      },
    };
  }

  /** The live machine made for this job attempt, if any. */
  #byJob(key: string): MachineRecord | undefined {
    for (const machine of this.#machines.values()) {
      if (machine.forJob?.key === key && machine.killed === undefined) {
        return machine;
      }
    }
    return undefined;
  }

  #byRunner(name: string): MachineRecord | undefined {
    for (const machine of this.#machines.values()) {
      if (sameName(machine.runnerName, name)) return machine;
    }
    return undefined;
  }
}
