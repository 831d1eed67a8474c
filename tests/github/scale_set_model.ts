/**
 * What GitHub's Actions service knows about runner scale sets: the scale
 * sets of each scope, their message sessions and message queues, which
 * queued jobs are for scale sets and which scale set each is assigned to,
 * and the statistics the service reports. Synchronous and without I/O:
 * scale_sets.ts puts the HTTP protocol around it, and GitHubState tells it
 * of every change of a job (it is the state's JobRouter).
 *
 * Jobs are assigned as on github.com (the service picks one scale set with
 * a session and room, round-robin, and sends it `JobAssigned`) or as on
 * GitHub Enterprise Server (every matching scale set with a session gets
 * `JobAvailable`; the first to acquire the job gets it).
 */

import {
  type GitHubState,
  type Job,
  type JobConclusion,
  type JobListener,
  type JobRouter,
  type JobState,
  labelsMatch,
  type RunnerScope,
  type RunnerState,
  scopeKey,
  timestamp,
} from "./state.ts";

/** How the service hands jobs to scale sets: github.com's or GHES's way. */
export type ScaleSetMode = "github.com" | "ghes";

export interface ScaleSetLabel {
  readonly name: string;
  readonly type: string;
}

/** The `RunnerSetting` of a scale set, as clients send it. */
export interface RunnerSetting {
  readonly ephemeral: boolean;
  readonly isElastic: boolean;
  readonly disableUpdate: boolean;
}

/** What the service reports of a scale set with every message. */
export interface ScaleSetStatistics {
  readonly totalAvailableJobs: number;
  readonly totalAcquiredJobs: number;
  /** Jobs assigned to the scale set, waiting for a runner or running. */
  readonly totalAssignedJobs: number;
  readonly totalRunningJobs: number;
  readonly totalRegisteredRunners: number;
  readonly totalBusyRunners: number;
  readonly totalIdleRunners: number;
}

export interface ScaleSet {
  readonly id: number;
  name: string;
  readonly scope: RunnerScope;
  runnerGroupId: number;
  labels: ScaleSetLabel[];
  runnerSetting: RunnerSetting;
  readonly createdOn: string;
  /** The latest `X-ScaleSetMaxCapacity`; undefined (none yet) is unlimited. */
  maxCapacity: number | undefined;
  readonly sessions: Map<string, Session>;
  /** Messages not acknowledged yet, oldest first. */
  readonly messages: QueuedMessage[];
  nextMessageId: number;
}

export interface Session {
  readonly sessionId: string;
  readonly ownerName: string;
  readonly scaleSetId: number;
  /** When it was made or last polled (Date.now()); it expires when idle. */
  lastSeen: number;
  /** Long polls blocked on it now: a session being polled is alive. */
  polls: number;
}

export interface QueuedMessage {
  readonly messageId: number;
  /** The JSON text of the job messages it carries. */
  readonly body: string;
}

/** A scale set as tests see it: current at the time of the call. */
export interface ScaleSetView {
  readonly id: number;
  readonly name: string;
  readonly scope: RunnerScope;
  readonly runnerGroupId: number;
  readonly labels: readonly string[];
  readonly maxCapacity: number | undefined;
  readonly sessions: readonly { sessionId: string; ownerName: string }[];
  readonly nextMessageId: number;
  /** Ids of the messages queued and not acknowledged. */
  readonly unacknowledged: readonly number[];
  readonly statistics: ScaleSetStatistics;
}

/** What a scale set is made or changed with. */
export interface ScaleSetFields {
  readonly name: string;
  readonly runnerGroupId: number;
  readonly labels: readonly ScaleSetLabel[];
  readonly runnerSetting: RunnerSetting;
}

export interface ScaleSetModelOptions {
  readonly mode: ScaleSetMode;
  readonly sessionIdleTtlMs: number;
  /** The `acquireJobUrl` of a scale set, for `JobAvailable` messages. */
  readonly acquireJobUrl: (scaleSetId: number) => string;
  /** Something long polls may wait for happened: a message, a session gone. */
  readonly onChange: () => void;
}

/** A job for scale sets, and where it stands. */
interface Assignment {
  readonly jobId: number;
  /** The id GHES's messages and `acquirejobs` name the job by. */
  readonly runnerRequestId: number;
  scaleSetId: number | undefined;
  scaleSetAssignTime: string | undefined;
  acquired: boolean;
  /** Scale sets sent `JobAvailable` for it (GHES). */
  readonly offeredTo: Set<number>;
  /** How often an assignment of it expired (expireAssignment). */
  expiries: number;
}

/** GitHub reassigns a job whose assignment expired this many times. */
const MAX_REASSIGNMENTS = 3;
/** Where `runnerRequestId`s start, to look like int64s of their own. */
const REQUEST_ID_BASE = 8_000_000_000;
/** .NET's DateTime.MinValue, which the service writes for "not yet". */
export const NOT_YET = "0001-01-01T00:00:00Z";

const RESULTS: Record<JobConclusion, string> = {
  success: "succeeded",
  failure: "failed",
  cancelled: "canceled",
};

export class ScaleSetModel implements JobRouter {
  readonly #state: GitHubState;
  readonly #options: ScaleSetModelOptions;
  readonly #sets = new Map<number, ScaleSet>();
  readonly #assignments = new Map<number, Assignment>();
  #nextId = 1;
  #nextRequestId = REQUEST_ID_BASE + 1;
  /** The scale set assigned to last, for round-robin (github.com). */
  #lastAssigned = 0;

  constructor(state: GitHubState, options: ScaleSetModelOptions) {
    this.#state = state;
    this.#options = options;
  }

  get mode(): ScaleSetMode {
    return this.#options.mode;
  }

  scaleSet(id: number): ScaleSet | undefined {
    return this.#sets.get(id);
  }

  /** The scale sets of a scope, oldest first. */
  scaleSetsOf(scope: RunnerScope): ScaleSet[] {
    const key = scopeKey(scope);
    return [...this.#sets.values()].filter((s) => scopeKey(s.scope) === key);
  }

  /** A new scale set, unless its group is unknown or its name taken there. */
  create(
    scope: RunnerScope,
    fields: ScaleSetFields,
  ): ScaleSet | "no group" | "exists" {
    const problem = this.#check(scope, fields, undefined);
    if (problem) return problem;
    const set: ScaleSet = {
      id: this.#nextId++,
      name: fields.name,
      scope,
      runnerGroupId: fields.runnerGroupId,
      labels: [...fields.labels],
      runnerSetting: fields.runnerSetting,
      createdOn: new Date().toISOString(),
      maxCapacity: undefined,
      sessions: new Map(),
      messages: [],
      nextMessageId: 1,
    };
    this.#sets.set(set.id, set);
    this.#adopt();
    this.#assign();
    return set;
  }

  /** A scale set changed (its name, group, labels, settings). */
  update(set: ScaleSet, fields: ScaleSetFields): "no group" | "exists" | "ok" {
    const problem = this.#check(set.scope, fields, set.id);
    if (problem) return problem;
    Object.assign(set, {
      name: fields.name,
      runnerGroupId: fields.runnerGroupId,
      labels: [...fields.labels],
      runnerSetting: fields.runnerSetting,
    });
    this.#adopt();
    this.#assign();
    return "ok";
  }

  #check(
    scope: RunnerScope,
    fields: ScaleSetFields,
    self: number | undefined,
  ): "no group" | "exists" | undefined {
    if (!this.group(scope, fields.runnerGroupId)) return "no group";
    const taken = this.scaleSetsOf(scope).some((s) =>
      s.id !== self && s.runnerGroupId === fields.runnerGroupId &&
      s.name.toLowerCase() === fields.name.toLowerCase()
    );
    return taken ? "exists" : undefined;
  }

  /** A runner group of the scope, by id. */
  group(scope: RunnerScope, id: number) {
    return this.#state.groupsOf(scope).find((g) => g.id === id);
  }

  /**
   * A scale set goes (its owner deleted it, or GitHub removed it as
   * inactive): its sessions end, its idle runners go, and the jobs
   * assigned to it that wait are assigned again.
   */
  delete(id: number): boolean {
    const set = this.#sets.get(id);
    if (!set) return false;
    this.#sets.delete(id);
    for (const runner of this.runnersOf(set)) {
      if (!runner.busy) this.#state.deleteRunner(runner.id);
    }
    for (const assignment of this.#assignments.values()) {
      assignment.offeredTo.delete(id);
      if (
        assignment.scaleSetId === id &&
        this.#state.job(assignment.jobId)?.status === "queued"
      ) {
        unassign(assignment);
      }
    }
    this.#assign();
    this.#options.onChange();
    return true;
  }

  /** The runners a scale set made that still exist. */
  runnersOf(set: ScaleSet): RunnerState[] {
    return this.#state.allRunners().filter((r) => r.scaleSetId === set.id);
  }

  /** A new session, or "conflict" while the scale set has a live one. */
  openSession(set: ScaleSet, ownerName: string): Session | "conflict" {
    this.#prune();
    const live = [...set.sessions.values()][0];
    if (live) return "conflict";
    const session: Session = {
      sessionId: crypto.randomUUID(),
      ownerName,
      scaleSetId: set.id,
      lastSeen: Date.now(),
      polls: 0,
    };
    set.sessions.set(session.sessionId, session);
    this.#assign();
    return session;
  }

  /** The live session with this id (of any scale set). */
  session(sessionId: string): Session | undefined {
    this.#prune();
    for (const set of this.#sets.values()) {
      const session = set.sessions.get(sessionId);
      if (session) return session;
    }
    return undefined;
  }

  deleteSession(set: ScaleSet, sessionId: string): boolean {
    this.#prune();
    const deleted = set.sessions.delete(sessionId);
    if (deleted) this.#options.onChange();
    return deleted;
  }

  /** Every live session. */
  openSessions(): Session[] {
    this.#prune();
    return [...this.#sets.values()].flatMap((s) => [...s.sessions.values()]);
  }

  /** A long poll on the session starts: it stays alive meanwhile. */
  beginPoll(session: Session): void {
    session.polls++;
    session.lastSeen = Date.now();
  }

  endPoll(session: Session): void {
    session.polls--;
    session.lastSeen = Date.now();
  }

  /** A poll announced the most runners the client can have. */
  announce(set: ScaleSet, maxCapacity: number): void {
    set.maxCapacity = maxCapacity;
    this.#assign();
  }

  /**
   * What a poll of the session gets now: the first message not
   * acknowledged after `lastMessageId` (0: the first), none, or "gone"
   * when the session or its scale set no longer exists.
   */
  poll(
    session: Session,
    lastMessageId: number,
  ): QueuedMessage | undefined | "gone" {
    const set = this.#sets.get(session.scaleSetId);
    if (!set || set.sessions.get(session.sessionId) !== session) return "gone";
    return set.messages.find((m) =>
      lastMessageId <= 0 || m.messageId > lastMessageId
    );
  }

  /** Acknowledges a message; false when no such message was ever queued. */
  ack(set: ScaleSet, messageId: number): boolean {
    const index = set.messages.findIndex((m) => m.messageId === messageId);
    if (index >= 0) set.messages.splice(index, 1);
    return index >= 0 ||
      (Number.isInteger(messageId) && messageId > 0 &&
        messageId < set.nextMessageId);
  }

  /**
   * `acquirejobs`: the ids of those jobs that are now the scale set's, by
   * this call or an earlier one. A job another scale set has is not.
   */
  acquire(set: ScaleSet, requestIds: readonly number[]): number[] {
    const won: number[] = [];
    for (const id of requestIds) {
      const assignment = [...this.#assignments.values()]
        .find((a) => a.runnerRequestId === id);
      const job = assignment && this.#state.job(assignment.jobId);
      if (!assignment || job?.status !== "queued") continue;
      if (assignment.scaleSetId === set.id) {
        won.push(id);
        continue;
      }
      if (
        assignment.scaleSetId !== undefined ||
        assignment.expiries > MAX_REASSIGNMENTS || !this.#matches(set, job)
      ) {
        continue;
      }
      assignment.acquired = true;
      this.#assignTo(set, assignment, job);
      won.push(id);
    }
    return won;
  }

  /** The statistics of a scale set, as of now. */
  statistics(set: ScaleSet): ScaleSetStatistics {
    let available = 0, acquired = 0, assigned = 0, running = 0;
    for (const a of this.#assignments.values()) {
      const status = this.#state.job(a.jobId)?.status;
      if (a.scaleSetId === set.id) {
        if (status === "queued" && a.acquired) acquired++;
        if (status === "queued" || status === "in_progress") assigned++;
        if (status === "in_progress") running++;
      } else if (
        a.scaleSetId === undefined && status === "queued" &&
        a.offeredTo.has(set.id)
      ) {
        available++;
      }
    }
    const runners = this.runnersOf(set);
    const busy = runners.filter((r) => r.busy).length;
    return {
      totalAvailableJobs: available,
      totalAcquiredJobs: acquired,
      totalAssignedJobs: assigned,
      totalRunningJobs: running,
      totalRegisteredRunners: runners.length,
      totalBusyRunners: busy,
      totalIdleRunners: runners.length - busy,
    };
  }

  views(): ScaleSetView[] {
    this.#prune();
    return [...this.#sets.values()].map((set) => ({
      id: set.id,
      name: set.name,
      scope: set.scope,
      runnerGroupId: set.runnerGroupId,
      labels: set.labels.map((l) => l.name),
      maxCapacity: set.maxCapacity,
      sessions: [...set.sessions.values()].map((s) => ({
        sessionId: s.sessionId,
        ownerName: s.ownerName,
      })),
      nextMessageId: set.nextMessageId,
      unacknowledged: set.messages.map((m) => m.messageId),
      statistics: this.statistics(set),
    }));
  }

  /** The scale set a job is assigned to, if any. */
  jobScaleSet(jobId: number): number | undefined {
    return this.#assignments.get(jobId)?.scaleSetId;
  }

  /**
   * An assigned job no runner took in time: `JobCompleted` (canceled) to
   * its scale set, then assigned again, up to three times; after that it
   * stays queued and unassigned.
   *
   * @throws when the job is not queued and assigned to a scale set
   */
  expireAssignment(jobId: number): void {
    const assignment = this.#assignments.get(jobId);
    const job = this.#state.job(jobId);
    if (
      !assignment || !job || job.status !== "queued" ||
      assignment.scaleSetId === undefined
    ) {
      throw new Error(`Job ${jobId} is not waiting in a scale set`);
    }
    const set = this.#sets.get(assignment.scaleSetId);
    if (set) {
      this.#send(set, "JobCompleted", job, assignment, {
        result: "canceled",
        runnerId: 0,
        runnerName: "",
      });
    }
    assignment.expiries++;
    unassign(assignment);
    this.#assign();
  }

  mayTake(runner: RunnerState, job: JobState): boolean {
    const assignment = this.#assignments.get(job.id);
    return runner.scaleSetId === undefined
      ? assignment === undefined
      : assignment?.scaleSetId === runner.scaleSetId;
  }

  changed(job: JobState, action: Parameters<JobListener>[1]): void {
    const assignment = this.#assignments.get(job.id);
    const set = assignment?.scaleSetId === undefined
      ? undefined
      : this.#sets.get(assignment.scaleSetId);
    switch (action) {
      case "queued":
        if (this.#matching(job).length > 0) this.#track(job);
        break;
      case "in_progress": {
        if (!assignment) break;
        const runner = job.runnerId === null
          ? undefined
          : this.#state.runner(job.runnerId);
        if (runner?.scaleSetId === undefined) {
          // Taken by a runner of no scale set (startJobElsewhere): not ours.
          this.#assignments.delete(job.id);
        } else if (set && runner.scaleSetId === set.id) {
          this.#send(set, "JobStarted", job, assignment, {
            runnerId: runner.id,
            runnerName: runner.name,
          });
        }
        break;
      }
      case "completed":
        if (assignment && set) {
          this.#send(set, "JobCompleted", job, assignment, {
            result: RESULTS[job.conclusion ?? "cancelled"],
            runnerId: job.runnerId ?? 0,
            runnerName: job.runnerName ?? "",
          });
        }
        break;
    }
    this.#assign();
  }

  /** Scale sets whose scope serves the job and that have all its labels. */
  #matching(job: Job): ScaleSet[] {
    return [...this.#sets.values()].filter((s) => this.#matches(s, job));
  }

  #matches(set: ScaleSet, job: Job): boolean {
    return this.#state.serves(set.scope, set.runnerGroupId, job) &&
      labelsMatch(job.labels, set.labels.map((l) => l.name));
  }

  /** From now on the job is for scale sets only. */
  #track(job: Job): void {
    if (this.#assignments.has(job.id)) return;
    this.#assignments.set(job.id, {
      jobId: job.id,
      runnerRequestId: this.#nextRequestId++,
      scaleSetId: undefined,
      scaleSetAssignTime: undefined,
      acquired: false,
      offeredTo: new Set(),
      expiries: 0,
    });
  }

  /** Queued jobs that a new or changed scale set matches become its kind. */
  #adopt(): void {
    for (const job of this.#state.jobs()) {
      if (job.status === "queued" && this.#matching(job).length > 0) {
        this.#track(job);
      }
    }
  }

  /**
   * Hands out waiting jobs, oldest first. github.com: to one matching scale
   * set with a live session and room, round-robin. GHES: `JobAvailable` to
   * every matching scale set with a live session not yet told.
   */
  #assign(): void {
    this.#prune();
    const waiting = [...this.#assignments.values()]
      .filter((a) =>
        a.scaleSetId === undefined && a.expiries <= MAX_REASSIGNMENTS &&
        this.#state.job(a.jobId)?.status === "queued"
      )
      .sort((a, b) => a.jobId - b.jobId);
    for (const assignment of waiting) {
      const job = this.#state.job(assignment.jobId)!;
      const live = this.#matching(job).filter((s) => s.sessions.size > 0);
      if (this.#options.mode === "ghes") {
        for (const set of live) {
          if (assignment.offeredTo.has(set.id)) continue;
          assignment.offeredTo.add(set.id);
          this.#send(set, "JobAvailable", job, assignment, {
            acquireJobUrl: this.#options.acquireJobUrl(set.id),
          });
        }
        continue;
      }
      const roomy = live.filter((s) =>
        s.maxCapacity === undefined ||
        this.statistics(s).totalAssignedJobs < s.maxCapacity
      ).sort((a, b) => a.id - b.id);
      const set = roomy.find((s) => s.id > this.#lastAssigned) ?? roomy[0];
      if (set) this.#assignTo(set, assignment, job);
    }
  }

  #assignTo(set: ScaleSet, assignment: Assignment, job: Job): void {
    assignment.scaleSetId = set.id;
    assignment.scaleSetAssignTime = timestamp();
    this.#lastAssigned = set.id;
    this.#send(set, "JobAssigned", job, assignment, {});
  }

  /** Queues one job message for the scale set's session. */
  #send(
    set: ScaleSet,
    messageType: string,
    job: Job,
    assignment: Assignment,
    extra: Record<string, unknown>,
  ): void {
    const message = {
      messageType,
      runnerRequestId: this.#options.mode === "ghes"
        ? assignment.runnerRequestId
        : 0,
      repositoryName: job.repo,
      ownerName: job.owner,
      jobId: String(job.id),
      jobWorkflowRef:
        `${job.owner}/${job.repo}/.github/workflows/ci.yml@refs/heads/main`,
      jobDisplayName: job.name,
      workflowRunId: job.runId,
      eventName: "push",
      requestLabels: [...job.labels],
      queueTime: job.createdAt,
      scaleSetAssignTime: assignment.scaleSetAssignTime ?? NOT_YET,
      runnerAssignTime: job.startedAt ?? NOT_YET,
      finishTime: job.completedAt ?? NOT_YET,
      ...extra,
    };
    set.messages.push({
      messageId: set.nextMessageId++,
      body: JSON.stringify([message]),
    });
    this.#options.onChange();
  }

  /** Ends sessions nobody polled for the idle TTL ("GitHub cleans up"). */
  #prune(): void {
    const now = Date.now();
    for (const set of this.#sets.values()) {
      for (const [id, session] of set.sessions) {
        if (
          session.polls === 0 &&
          now - session.lastSeen > this.#options.sessionIdleTtlMs
        ) {
          set.sessions.delete(id);
        }
      }
    }
  }
}

function unassign(assignment: Assignment): void {
  assignment.scaleSetId = undefined;
  assignment.scaleSetAssignTime = undefined;
  assignment.acquired = false;
  assignment.offeredTo.clear();
}
