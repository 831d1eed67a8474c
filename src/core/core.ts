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
  KILL_ORDER,
  type KillReason,
  type Machine,
  type MachineState,
} from "./machine.ts";

export interface CoreOptions {
  /** Demand settles once no job changed for this long (ms). */
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
  /** Register a just-in-time runner for the machine. */
  | { readonly kind: "register"; readonly machine: Machine }
  /** Fork its disk and boot its VM: the budget has room. */
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

export interface Status {
  readonly machines: StatusMachine[];
  readonly jobs: StatusJob[];
  readonly budget: {
    readonly ram: { readonly used: number; readonly total: number };
    readonly cpus: { readonly used: number; readonly total: number | null };
  };
}

/** A machine's record as the core keeps it; callers see it read-only. */
type MachineRecord = { -readonly [K in keyof Machine]: Machine[K] };

const RUNNER_PREFIX = "forrest-";
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
  #shuttingDown = false;

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
    // A webhook that came while the poll ran is newer than its listing.
    const fresh = reports.filter((report) =>
      (this.#jobs.get(jobKey(report))?.updatedAt ?? -Infinity) < startedAt
    );
    const changes = fresh.map((report) => this.jobReported(report, now))
      .filter((change) => change.kind !== "none");
    const listed = new Set(reports.map(jobKey));
    const dropped = this.#jobs.forgetUnlisted(listing, listed, startedAt);
    if (dropped.length) this.#jobChanged(now);
    return [
      ...changes,
      ...dropped.map((job) => ({ kind: "dropped" as const, job })),
    ];
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
    if (machine.state !== "starting" || machine.killed) return;
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
      if (job) this.#observations.pickup.push((now - job.queuedAt) / 1000);
    }
    machine.ranJob = true;
    if (machine.state === "starting" || machine.state === "waiting") {
      if (machine.state === "starting") this.#observeBoot(machine, now);
      this.#setState(machine, "running", now);
      this.#failures.delete(tripletKey(machine.triplet));
    }
  }

  #observeBoot(machine: MachineRecord, now: number): void {
    if (machine.startedAt !== undefined) {
      this.#observations.boot.push((now - machine.startedAt) / 1000);
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

  /** Registration failed: the machine is gone; its type backs off. */
  registerFailed(id: number, now: number): void {
    const machine = this.#machines.get(id);
    if (machine === undefined) return;
    // A machine killed meanwhile was not wanted anyway: no backoff.
    if (machine.killed === undefined) this.#failed(machine, now);
    this.#machines.delete(id);
    this.#countedFailures.delete(id);
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
    this.#setState(machine, "registered", now);
    return news;
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
    this.#machines.delete(id);
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
   * Kills machines past their start timeout, settles demand (after the
   * debounce) into new and surplus machines, and starts what the budget
   * allows, largest first.
   */
  tick(now: number): Decision[] {
    const decisions: Decision[] = [];
    for (const machine of this.#machines.values()) {
      const timeout = machine.config.startTimeout;
      if (
        machine.state === "starting" && machine.killed === undefined &&
        machine.startedAt !== undefined && now - machine.startedAt >= timeout
      ) {
        const decision = this.#kill(machine, "start-timeout", now);
        if (decision) decisions.push(decision);
      }
    }
    if (!this.#shuttingDown && this.#demandSettled(now)) {
      this.#firstUnsettled = undefined;
      decisions.push(...this.#planDemand(now));
    }
    decisions.push(...this.#planStarts(now));
    return decisions;
  }

  #demandSettled(now: number): boolean {
    if (this.#firstUnsettled === undefined) return true;
    return now - this.#lastJobChange! >= this.#options.debounce ||
      now - this.#firstUnsettled >= this.#options.maxDebounce;
  }

  #planDemand(now: number): Decision[] {
    const decisions: Decision[] = [];
    const demand = this.#jobs.queuedBy(tripletKey);
    const available = new Map<string, MachineRecord[]>();
    for (const machine of this.#machines.values()) {
      if (!isAvailable(machine) || machine.forJob !== undefined) continue;
      const key = tripletKey(machine.triplet);
      available.set(key, [...(available.get(key) ?? []), machine]);
    }
    for (const config of allMachines(this.#config)) {
      if (forgeOf(config.triplet.scope) !== undefined) continue;
      const key = tripletKey(config.triplet);
      const wanted = demand.get(key) ?? 0;
      const have = available.get(key)?.length ?? 0;
      if (wanted > have && this.#mayCreate(key, now)) {
        for (let i = have; i < wanted; i++) {
          decisions.push(this.#create(config, undefined, now));
        }
      }
    }
    decisions.push(...this.#planJobMachines(now));
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
   * that has none; one whose job is no longer queued (cancelled, taken,
   * gone) is killed before it takes anything, as its runner would wait for
   * that job forever.
   */
  #planJobMachines(now: number): Decision[] {
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
    const configs = new Map(
      allMachines(this.#config).map((c) => [tripletKey(c.triplet), c]),
    );
    for (const job of queued.values()) {
      const key = tripletKey(job.triplet);
      const config = configs.get(key);
      if (covered.has(job.key) || !config || !this.#mayCreate(key, now)) {
        continue;
      }
      const forJob = { key: job.key, handle: job.handle! };
      decisions.push(this.#create(config, forJob, now));
    }
    return decisions;
  }

  #create(
    config: MachineConfig,
    forJob: Machine["forJob"],
    now: number,
  ): Decision {
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
    };
    this.#machines.set(machine.id, machine);
    this.#setState(machine, "registering", now);
    return { kind: "register", machine: { ...machine } };
  }

  #planStarts(now: number): Decision[] {
    const used = this.#budgetUsed();
    const { ram, cpus } = this.#config.host;
    const candidates = [...this.#machines.values()]
      .filter((m) =>
        m.state === "registered" && m.killed === undefined &&
        (m.wait === undefined || m.wait.until <= now)
      )
      .sort((a, b) =>
        b.config.ram - a.config.ram || b.config.cpus - a.config.cpus ||
        a.id - b.id
      );
    const decisions: Decision[] = [];
    for (const machine of candidates) {
      const fitsRam = used.ram + machine.config.ram <= ram;
      const fitsCpus = cpus === undefined ||
        used.cpus + machine.config.cpus <= cpus;
      if (!fitsRam || !fitsCpus) continue;
      used.ram += machine.config.ram;
      used.cpus += machine.config.cpus;
      machine.startedAt = now;
      this.#setState(machine, "starting", now);
      decisions.push({ kind: "start", machine: { ...machine } });
    }
    return decisions;
  }

  #budgetUsed(): { ram: number; cpus: number } {
    let ram = 0;
    let cpus = 0;
    for (const machine of this.#machines.values()) {
      if (!holdsBudget(machine)) continue;
      ram += machine.config.ram;
      cpus += machine.config.cpus;
    }
    return { ram, cpus };
  }

  /**
   * Kills a machine: one still being requested just goes; any other gets a
   * kill decision and is `stopping` until the executor reports it stopped.
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
    if (machine.state === "requested") {
      this.#machines.delete(machine.id);
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
      if (machine.state === "starting" && machine.startedAt !== undefined) {
        times.push(machine.startedAt + machine.config.startTimeout);
      }
      // An expired wait is due at the next plan anyway; counting it here
      // would wake the loop at once, over and over, while the budget is full.
      if (
        machine.state === "registered" && machine.wait &&
        machine.wait.until > now
      ) {
        times.push(machine.wait.until);
      }
    }
    const demand = this.#jobs.queuedBy(tripletKey);
    for (const [key, failure] of this.#failures) {
      if (failure.until > now && (demand.get(key) ?? 0) > 0) {
        times.push(failure.until);
      }
    }
    const future = times.map((t) => Math.max(t, now));
    return future.length ? Math.min(...future) : undefined;
  }

  machines(): Machine[] {
    return [...this.#machines.values()].map((m) => ({ ...m }));
  }

  /** Whether a machine of this triplet has a VM (its image may change). */
  isRunning(triplet: Machine["triplet"]): boolean {
    const key = tripletKey(triplet);
    return [...this.#machines.values()].some((m) =>
      tripletKey(m.triplet) === key && holdsBudget(m)
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
        since: iso(m.since),
        job: m.jobId ?? null,
        note: m.killed !== undefined
          ? `killed: ${m.killed}`
          : m.wait?.message ?? null,
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
