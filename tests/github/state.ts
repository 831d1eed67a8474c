/**
 * What the GitHub double knows: repositories, organizations, enterprises,
 * runner groups, runners, runs and jobs.
 */

export interface Repo {
  readonly id: number;
  readonly owner: string;
  readonly ownerId: number;
  readonly name: string;
  readonly installationId: number;
}

export type JobStatus = "queued" | "in_progress" | "completed";
export type JobConclusion = "success" | "failure" | "cancelled";

/** Where a runner is registered: its repository, organization or enterprise. */
export type RunnerScope =
  | {
    readonly kind: "repository";
    readonly owner: string;
    readonly repo: string;
  }
  | { readonly kind: "organization"; readonly org: string }
  | { readonly kind: "enterprise"; readonly enterprise: string };

/** A runner group of an organization or an enterprise. */
export interface RunnerGroup {
  readonly id: number;
  readonly name: string;
  /** "selected": only `repoIds` (organizations) may use it. */
  readonly visibility: "all" | "selected" | "private";
  readonly repoIds: readonly number[];
}

/** Every organization and enterprise has it; repository runners are in it. */
export const DEFAULT_GROUP: RunnerGroup = {
  id: 1,
  name: "Default",
  visibility: "all",
  repoIds: [],
};

export interface Account {
  readonly login: string;
  readonly id: number;
  /** An organization's enterprise, if it belongs to one. */
  readonly enterprise: string | undefined;
  readonly groups: RunnerGroup[];
}

export interface RunnerState {
  readonly id: number;
  readonly scope: RunnerScope;
  readonly name: string;
  readonly labels: readonly string[];
  readonly runnerGroupId: number;
  readonly workFolder: string;
  /** The secret inside its JIT config; the stand-in proves itself with it. */
  readonly secret: string;
  /** The runner scale set it belongs to (made by its generatejitconfig). */
  readonly scaleSetId?: number;
  status: "offline" | "online";
  busy: boolean;
  jobId: number | undefined;
}

/** A runner as tests see it. */
export type Runner = Readonly<RunnerState>;

export interface JobState {
  readonly id: number;
  readonly runId: number;
  readonly owner: string;
  readonly repo: string;
  readonly name: string;
  readonly labels: readonly string[];
  /** What the stand-in runs with `sh -c`. */
  readonly script: string;
  readonly createdAt: string;
  status: JobStatus;
  conclusion: JobConclusion | null;
  startedAt: string | null;
  completedAt: string | null;
  runnerId: number | null;
  runnerName: string | null;
  runnerGroupId: number | null;
  runnerGroupName: string | null;
}

/** A job as tests see it. */
export type Job = Readonly<JobState>;

export interface Run {
  readonly id: number;
  readonly owner: string;
  readonly repo: string;
  readonly createdAt: string;
  readonly jobIds: number[];
}

/** An ISO time to the second, as GitHub writes them. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * A run's status from its jobs: in progress while any job runs, queued
 * while any waits, completed when all are.
 */
export function runStatus(jobs: readonly Job[]): JobStatus {
  if (jobs.some((j) => j.status === "in_progress")) return "in_progress";
  if (jobs.some((j) => j.status === "queued")) return "queued";
  return "completed";
}

/** A completed run's conclusion: the worst of its jobs'. */
export function runConclusion(jobs: readonly Job[]): JobConclusion | null {
  if (runStatus(jobs) !== "completed") return null;
  if (jobs.some((j) => j.conclusion === "failure")) return "failure";
  if (jobs.some((j) => j.conclusion === "cancelled")) return "cancelled";
  return "success";
}

/** Whether a runner with `runnerLabels` can take a job asking for `jobLabels`. */
export function labelsMatch(
  jobLabels: readonly string[],
  runnerLabels: readonly string[],
): boolean {
  const have = new Set(runnerLabels.map((l) => l.toLowerCase()));
  return jobLabels.every((l) => have.has(l.toLowerCase()));
}

/** A job changed in a way GitHub sends a `workflow_job` webhook for. */
export type JobListener = (
  job: Job,
  action: "queued" | "in_progress" | "completed",
) => void;

/**
 * Who else decides about jobs: the runner scale sets (scale_set_model.ts),
 * which reserve jobs for themselves and follow every change of them.
 */
export interface JobRouter {
  /** Whether `runner` may take `job`, which it could serve by labels and scope. */
  mayTake(runner: RunnerState, job: JobState): boolean;
  /** Every change of a job, whether or not a webhook goes out for it. */
  changed(job: JobState, action: Parameters<JobListener>[1]): void;
}

/**
 * The double's world and the transitions GitHub would make. Ids of each kind
 * come from their own range, so a run id passed as a job id finds nothing.
 */
export class GitHubState {
  readonly #repos = new Map<string, Repo>();
  readonly #installations = new Map<string, number>();
  readonly #runners = new Map<number, RunnerState>();
  /**
   * When each runner's stand-in first said it runs (Date.now()), by name,
   * kept after the runner is deleted: benchmarks time job starts by it.
   */
  readonly onlineAt = new Map<string, number>();
  readonly #runs = new Map<number, Run>();
  readonly #jobs = new Map<number, JobState>();
  readonly #labelIds = new Map<string, number>();
  readonly #orgs = new Map<string, Account>();
  readonly #enterprises = new Map<string, Account>();
  readonly #listener: JobListener;
  /** Set by the double when it serves runner scale sets. */
  router: JobRouter | undefined = undefined;
  readonly #next = {
    installation: 100,
    repo: 5000,
    runner: 1,
    run: 1_000_000,
    job: 2_000_000,
    label: 1,
    group: 2,
    account: 900,
  };

  constructor(listener: JobListener) {
    this.#listener = listener;
  }

  addRepo(owner: string, name: string): Repo {
    const known = this.repo(owner, name);
    if (known) return known;
    const { installationId, ownerId } = this.installOn(owner);
    const repo: Repo = {
      id: this.#next.repo++,
      owner,
      ownerId,
      name,
      installationId,
    };
    this.#repos.set(`${owner.toLowerCase()}/${name.toLowerCase()}`, repo);
    return repo;
  }

  /**
   * The App uninstalled and installed again on `owner`: a new installation
   * id, and tokens of the old one no longer work.
   */
  reinstall(owner: string): number {
    const ownerKey = owner.toLowerCase();
    const installationId = this.#next.installation++;
    this.#installations.set(ownerKey, installationId);
    for (const [key, repo] of this.#repos) {
      if (repo.owner.toLowerCase() === ownerKey) {
        this.#repos.set(key, { ...repo, installationId });
      }
    }
    return installationId;
  }

  /** The App's installation on an account, made on first use. */
  installOn(owner: string): Pick<Repo, "owner" | "ownerId" | "installationId"> {
    const ownerKey = owner.toLowerCase();
    let installationId = this.#installations.get(ownerKey);
    if (installationId === undefined) {
      installationId = this.#next.installation++;
      this.#installations.set(ownerKey, installationId);
    }
    return { owner, ownerId: 10_000 + installationId, installationId };
  }

  /** The App's installation on an account, if it has one. */
  installationOf(login: string): number | undefined {
    return this.#installations.get(login.toLowerCase());
  }

  /** An account's repositories, in the order they were added. */
  reposOf(login: string): Repo[] {
    return [...this.#repos.values()].filter((r) =>
      r.owner.toLowerCase() === login.toLowerCase()
    );
  }

  hasInstallation(id: number): boolean {
    return [...this.#installations.values()].includes(id);
  }

  /** A repository by name, case-insensitively as GitHub does. */
  repo(owner: string, name: string): Repo | undefined {
    return this.#repos.get(`${owner}/${name}`.toLowerCase());
  }

  /** A stable id per label name, as GitHub keeps label ids. */
  labelId(name: string): number {
    const key = name.toLowerCase();
    let id = this.#labelIds.get(key);
    if (id === undefined) this.#labelIds.set(key, id = this.#next.label++);
    return id;
  }

  /** An organization (its repositories are added with addRepo). */
  addOrg(login: string, enterprise?: string): Account {
    const known = this.org(login);
    if (known) return known;
    if (enterprise !== undefined && !this.enterprise(enterprise)) {
      throw new Error(`No enterprise ${enterprise}`);
    }
    const org = {
      login,
      id: this.#next.account++,
      enterprise,
      groups: [DEFAULT_GROUP],
    };
    this.#orgs.set(login.toLowerCase(), org);
    return org;
  }

  addEnterprise(slug: string): Account {
    const known = this.enterprise(slug);
    if (known) return known;
    const enterprise = {
      login: slug,
      id: this.#next.account++,
      enterprise: undefined,
      groups: [DEFAULT_GROUP],
    };
    this.#enterprises.set(slug.toLowerCase(), enterprise);
    return enterprise;
  }

  org(login: string): Account | undefined {
    return this.#orgs.get(login.toLowerCase());
  }

  enterprise(slug: string): Account | undefined {
    return this.#enterprises.get(slug.toLowerCase());
  }

  /** A new runner group of an organization or enterprise. */
  addRunnerGroup(
    account: Account,
    name: string,
    visibility: RunnerGroup["visibility"] = "all",
    repoIds: readonly number[] = [],
  ): RunnerGroup {
    const group = { id: this.#next.group++, name, visibility, repoIds };
    account.groups.push(group);
    return group;
  }

  /** The account a scope's runner groups belong to. */
  accountOf(scope: RunnerScope): Account | undefined {
    return scope.kind === "organization"
      ? this.org(scope.org)
      : scope.kind === "enterprise"
      ? this.enterprise(scope.enterprise)
      : undefined;
  }

  /** The runner groups a runner of this scope may be put in. */
  groupsOf(scope: RunnerScope): readonly RunnerGroup[] {
    return this.accountOf(scope)?.groups ?? [DEFAULT_GROUP];
  }

  runners(repo: Repo): RunnerState[] {
    return this.runnersIn({
      kind: "repository",
      owner: repo.owner,
      repo: repo.name,
    });
  }

  runnersIn(scope: RunnerScope): RunnerState[] {
    const key = scopeKey(scope);
    return [...this.#runners.values()].filter((r) => scopeKey(r.scope) === key);
  }

  runner(id: number): RunnerState | undefined {
    return this.#runners.get(id);
  }

  /** Every runner of every scope, oldest first. */
  allRunners(): RunnerState[] {
    return [...this.#runners.values()];
  }

  /** A new offline runner, or undefined when the name is taken in the scope. */
  createRunner(
    scope: RunnerScope | Repo,
    fields: Pick<
      RunnerState,
      "name" | "labels" | "runnerGroupId" | "workFolder" | "scaleSetId"
    >,
  ): RunnerState | undefined {
    const where: RunnerScope = "kind" in scope
      ? scope
      : { kind: "repository", owner: scope.owner, repo: scope.name };
    if (this.runnersIn(where).some((r) => r.name === fields.name)) {
      return undefined;
    }
    const runner: RunnerState = {
      ...fields,
      id: this.#next.runner++,
      scope: where,
      secret: randomToken(32),
      status: "offline",
      busy: false,
      jobId: undefined,
    };
    this.#runners.set(runner.id, runner);
    return runner;
  }

  deleteRunner(id: number): void {
    this.#runners.delete(id);
  }

  jobs(): JobState[] {
    return [...this.#jobs.values()];
  }

  job(id: number): JobState | undefined {
    return this.#jobs.get(id);
  }

  runs(repo: Repo): Run[] {
    return [...this.#runs.values()].filter((r) => isIn(r, repo));
  }

  run(repo: Repo, id: number): Run | undefined {
    const run = this.#runs.get(id);
    return run && isIn(run, repo) ? run : undefined;
  }

  jobsOf(run: Run): JobState[] {
    return run.jobIds.map((id) => this.#jobs.get(id)!);
  }

  queueJob(
    repo: Repo,
    fields: { labels: readonly string[]; script: string; runId?: number },
    notify: boolean,
  ): JobState {
    let run = fields.runId === undefined
      ? undefined
      : this.run(repo, fields.runId);
    if (fields.runId !== undefined && !run) {
      throw new Error(`No run ${fields.runId} in ${repo.owner}/${repo.name}`);
    }
    if (!run) {
      run = {
        id: this.#next.run++,
        owner: repo.owner,
        repo: repo.name,
        createdAt: timestamp(),
        jobIds: [],
      };
      this.#runs.set(run.id, run);
    }
    const job: JobState = {
      id: this.#next.job++,
      runId: run.id,
      owner: repo.owner,
      repo: repo.name,
      name: `job-${run.jobIds.length + 1}`,
      labels: [...fields.labels],
      script: fields.script,
      createdAt: timestamp(),
      status: "queued",
      conclusion: null,
      startedAt: null,
      completedAt: null,
      runnerId: null,
      runnerName: null,
      runnerGroupId: null,
      runnerGroupName: null,
    };
    run.jobIds.push(job.id);
    this.#jobs.set(job.id, job);
    this.#changed(job, "queued", notify);
    return job;
  }

  /**
   * The runner's job: the one it already has, else the oldest queued job
   * it may serve (its repository; its organization's repositories that its
   * group is open to; its enterprise's organizations) and has all the
   * labels for, now in progress.
   */
  take(runner: RunnerState): JobState | undefined {
    if (runner.jobId !== undefined) return this.#jobs.get(runner.jobId);
    const job = [...this.#jobs.values()].find((j) =>
      j.status === "queued" && this.#serves(runner, j) &&
      labelsMatch(j.labels, runner.labels) &&
      (this.router?.mayTake(runner, j) ?? true)
    );
    if (!job) return undefined;
    const group = this.groupsOf(runner.scope)
      .find((g) => g.id === runner.runnerGroupId);
    Object.assign(job, {
      status: "in_progress",
      startedAt: timestamp(),
      runnerId: runner.id,
      runnerName: runner.name,
      runnerGroupId: runner.runnerGroupId,
      runnerGroupName: group?.name ?? null,
    });
    Object.assign(runner, { busy: true, jobId: job.id, status: "online" });
    this.#changed(job, "in_progress");
    return job;
  }

  #serves(runner: RunnerState, job: Job): boolean {
    return this.serves(runner.scope, runner.runnerGroupId, job);
  }

  /**
   * Whether runners of `scope` in group `runnerGroupId` may take `job`: of
   * its repository; of its organization, when the group is open to the
   * repository; of its organization's enterprise, likewise.
   */
  serves(scope: RunnerScope, runnerGroupId: number, job: Job): boolean {
    if (scope.kind === "repository") return sameRepo(job, scope);
    const group = this.groupsOf(scope).find((g) => g.id === runnerGroupId);
    const repo = this.repo(job.owner, job.repo);
    if (!group || !repo) return false;
    if (group.visibility === "selected" && !group.repoIds.includes(repo.id)) {
      return false;
    }
    if (scope.kind === "organization") {
      return job.owner.toLowerCase() === scope.org.toLowerCase();
    }
    return this.org(job.owner)?.enterprise?.toLowerCase() ===
      scope.enterprise.toLowerCase();
  }

  /** The runner's job ends with its exit code; the ephemeral runner goes. */
  finish(runner: RunnerState, exitCode: number): JobState | undefined {
    this.#runners.delete(runner.id);
    const job = runner.jobId === undefined
      ? undefined
      : this.#jobs.get(runner.jobId);
    if (!job || job.status === "completed") return job;
    this.#complete(job, exitCode === 0 ? "success" : "failure");
    return job;
  }

  /**
   * A queued job taken by a runner that no scope of the double lists (a
   * GitHub-hosted one): in progress.
   */
  startElsewhere(id: number, runnerName: string): JobState {
    const job = this.#jobs.get(id);
    if (!job) throw new Error(`No job ${id}`);
    if (job.status !== "queued") throw new Error(`Job ${id} is ${job.status}`);
    Object.assign(job, {
      status: "in_progress",
      startedAt: timestamp(),
      runnerId: this.#next.runner++,
      runnerName,
      runnerGroupId: 0,
      runnerGroupName: "GitHub Actions",
    });
    this.#changed(job, "in_progress");
    return job;
  }

  /** A job that startElsewhere() started ends. */
  finishElsewhere(id: number, conclusion: JobConclusion): JobState {
    const job = this.#jobs.get(id);
    if (!job) throw new Error(`No job ${id}`);
    if (job.status !== "in_progress") {
      throw new Error(`Job ${id} is ${job.status}`);
    }
    this.#complete(job, conclusion);
    return job;
  }

  /** A queued job is cancelled (a running one is left alone). */
  cancel(id: number): JobState {
    const job = this.#jobs.get(id);
    if (!job) throw new Error(`No job ${id}`);
    if (job.status === "queued") this.#complete(job, "cancelled");
    return job;
  }

  #complete(job: JobState, conclusion: JobConclusion): void {
    Object.assign(job, {
      status: "completed",
      conclusion,
      completedAt: timestamp(),
    });
    this.#changed(job, "completed");
  }

  /** Tells the router of every change, and the listener unless `notify` is off. */
  #changed(
    job: JobState,
    action: Parameters<JobListener>[1],
    notify = true,
  ): void {
    this.router?.changed(job, action);
    if (notify) this.#listener(job, action);
  }
}

/** A scope as one case-insensitive string. */
export function scopeKey(scope: RunnerScope): string {
  switch (scope.kind) {
    case "repository":
      return `repo:${scope.owner}/${scope.repo}`.toLowerCase();
    case "organization":
      return `org:${scope.org}`.toLowerCase();
    case "enterprise":
      return `enterprise:${scope.enterprise}`.toLowerCase();
  }
}

interface InRepo {
  readonly owner: string;
  readonly repo: string;
}

function isIn(item: InRepo, repo: Repo): boolean {
  return sameRepo(item, { owner: repo.owner, repo: repo.name });
}

function sameRepo(a: InRepo, b: InRepo): boolean {
  return `${a.owner}/${a.repo}`.toLowerCase() ===
    `${b.owner}/${b.repo}`.toLowerCase();
}

/** Random letters and digits, like GitHub's token bodies. */
export function randomToken(length: number): string {
  const alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}
