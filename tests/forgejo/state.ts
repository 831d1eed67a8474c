/**
 * What the Forgejo double knows: accounts (users and organizations share
 * one namespace and one id sequence, as in Forgejo), repositories, access
 * tokens, runners and job attempts, and the transitions Forgejo makes
 * (research note §1.2–§1.6). Pure and synchronous; time comes in as
 * arguments.
 */

import { normalizeScopes } from "./scopes.ts";

export interface User {
  readonly id: number;
  readonly login: string;
  readonly email: string;
  readonly createdAt: string;
  /** Who made it over the API (`POST /admin/users`); undefined for tests' own. */
  readonly createdBy: string | undefined;
  admin: boolean;
  password: string;
  mustChangePassword: boolean;
  visibility: string;
  fullName: string;
}

export interface Org {
  readonly id: number;
  readonly name: string;
  readonly owners: readonly string[];
}

export interface Repo {
  readonly id: number;
  readonly owner: string;
  readonly ownerId: number;
  readonly name: string;
}

export interface Token {
  readonly id: number;
  readonly login: string;
  readonly name: string;
  /** 40 hex digits, what Forgejo's API calls `sha1`. */
  readonly secret: string;
  readonly scopes: readonly string[];
}

/** Where a runner is registered. */
export type RunnerScope =
  | { readonly kind: "repo"; readonly repoId: number }
  | { readonly kind: "org"; readonly orgId: number };

export interface Runner {
  readonly id: number;
  readonly uuid: string;
  readonly name: string;
  readonly description: string;
  readonly ephemeral: boolean;
  readonly scope: RunnerScope;
  /** Its own secret, shown once at registration. */
  readonly token: string;
  /** Declared by the runner itself when it starts, not at registration. */
  labels: readonly string[];
  version: string;
  /** When a guest call last proved it alive (ms), if ever. */
  lastSeen: number | undefined;
  /** The job it runs now. */
  jobId: number | undefined;
  /** Whether it ever took a task: an ephemeral runner takes one only. */
  tookTask: boolean;
}

export type JobStatus =
  | "waiting"
  | "running"
  | "success"
  | "failure"
  | "cancelled";

export interface Job {
  readonly id: number;
  readonly repoId: number;
  readonly name: string;
  readonly runsOn: readonly string[];
  /** What the stand-in runs with `sh -c`. */
  readonly script: string;
  attempt: number;
  handle: string;
  status: JobStatus;
  /** The latest task's id; 0 before the first. */
  taskId: number;
  runnerId: number | undefined;
  exitCode: number | undefined;
}

/** Forgejo's `RunnerOfflineTime`: not seen for a minute is offline (§1.4). */
export const OFFLINE_AFTER_MS = 60_000;

export class ForgejoState {
  readonly #users = new Map<string, User>();
  readonly #orgs = new Map<string, Org>();
  readonly #repos = new Map<number, Repo>();
  readonly #tokens: Token[] = [];
  readonly #runners = new Map<number, Runner>();
  readonly #jobs = new Map<number, Job>();
  readonly #next = {
    account: 1,
    repo: 1,
    token: 1,
    runner: 1,
    job: 1,
    task: 1,
  };

  addUser(
    login: string,
    fields: {
      admin?: boolean;
      password?: string;
      mustChangePassword?: boolean;
      email?: string;
      createdBy?: string;
      visibility?: string;
      fullName?: string;
    } = {},
  ): User {
    this.#claimName(login);
    const user: User = {
      id: this.#next.account++,
      login,
      email: fields.email ?? `${login.toLowerCase()}@forgejo.test`,
      createdAt: timestamp(),
      createdBy: fields.createdBy,
      admin: fields.admin ?? false,
      password: fields.password ?? randomHex(16),
      mustChangePassword: fields.mustChangePassword ?? false,
      visibility: fields.visibility ?? "public",
      fullName: fields.fullName ?? "",
    };
    this.#users.set(login.toLowerCase(), user);
    return user;
  }

  user(login: string): User | undefined {
    return this.#users.get(login.toLowerCase());
  }

  users(): User[] {
    return [...this.#users.values()];
  }

  addOrg(name: string, owners: readonly string[] = []): Org {
    for (const owner of owners) {
      if (!this.user(owner)) throw new Error(`No user ${owner}`);
    }
    this.#claimName(name);
    const org = { id: this.#next.account++, name, owners: [...owners] };
    this.#orgs.set(name.toLowerCase(), org);
    return org;
  }

  org(name: string): Org | undefined {
    return this.#orgs.get(name.toLowerCase());
  }

  orgById(id: number): Org | undefined {
    return [...this.#orgs.values()].find((o) => o.id === id);
  }

  /** Whether `login` owns the organization (site admins do not, here). */
  ownsOrg(org: Org, login: string): boolean {
    return org.owners.some((o) => o.toLowerCase() === login.toLowerCase());
  }

  /** Whether `login` owns the repository: its user, or an owner of its org. */
  ownsRepo(repo: Repo, login: string): boolean {
    const org = this.org(repo.owner);
    return org
      ? this.ownsOrg(org, login)
      : repo.owner.toLowerCase() === login.toLowerCase();
  }

  addRepo(owner: string, name: string): Repo {
    const account = this.user(owner) ?? this.org(owner);
    if (!account) throw new Error(`No user or organization ${owner}`);
    if (this.repo(owner, name)) throw new Error(`${owner}/${name} exists`);
    const repo = {
      id: this.#next.repo++,
      owner: "login" in account ? account.login : account.name,
      ownerId: account.id,
      name,
    };
    this.#repos.set(repo.id, repo);
    return repo;
  }

  repo(owner: string, name: string): Repo | undefined {
    const key = `${owner}/${name}`.toLowerCase();
    return [...this.#repos.values()].find((r) =>
      `${r.owner}/${r.name}`.toLowerCase() === key
    );
  }

  repoById(id: number): Repo | undefined {
    return this.#repos.get(id);
  }

  /**
   * A new token of `login`.
   *
   * @throws {RangeError} for an unknown scope, no scope, or a used name
   */
  addToken(login: string, scopes: readonly string[], name?: string): Token {
    const user = this.user(login);
    if (!user) throw new Error(`No user ${login}`);
    const normalized = normalizeScopes(scopes);
    if (normalized.length === 0) {
      throw new RangeError("access token must have a scope");
    }
    const id = this.#next.token++;
    const tokenName = name ?? `token-${id}`;
    if (this.tokensOf(user.login).some((t) => t.name === tokenName)) {
      throw new RangeError("access token name has been used already");
    }
    const token = {
      id,
      login: user.login,
      name: tokenName,
      secret: randomHex(20),
      scopes: normalized,
    };
    this.#tokens.push(token);
    return token;
  }

  tokenBySecret(secret: string): Token | undefined {
    return this.#tokens.find((t) => t.secret === secret);
  }

  tokensOf(login: string): Token[] {
    return this.#tokens.filter((t) =>
      t.login.toLowerCase() === login.toLowerCase()
    );
  }

  deleteToken(id: number): void {
    const at = this.#tokens.findIndex((t) => t.id === id);
    if (at >= 0) this.#tokens.splice(at, 1);
  }

  registerRunner(
    scope: RunnerScope,
    fields: { name: string; description: string; ephemeral: boolean },
  ): Runner {
    const runner: Runner = {
      ...fields,
      id: this.#next.runner++,
      uuid: crypto.randomUUID(),
      scope,
      token: randomHex(20),
      labels: [],
      version: "",
      lastSeen: undefined,
      jobId: undefined,
      tookTask: false,
    };
    this.#runners.set(runner.id, runner);
    return runner;
  }

  runner(id: number): Runner | undefined {
    return this.#runners.get(id);
  }

  runnerByUuid(uuid: string): Runner | undefined {
    return [...this.#runners.values()].find((r) => r.uuid === uuid);
  }

  runners(): Runner[] {
    return [...this.#runners.values()];
  }

  /** A scope's own runners, oldest first. */
  runnersIn(scope: RunnerScope): Runner[] {
    return this.runners().filter((r) => sameScope(r.scope, scope));
  }

  deleteRunner(id: number): void {
    this.#runners.delete(id);
  }

  /** `offline` if not seen for a minute (or never), `active` on a task. */
  runnerStatus(runner: Runner, now: number): "offline" | "idle" | "active" {
    if (
      runner.lastSeen === undefined || now - runner.lastSeen > OFFLINE_AFTER_MS
    ) {
      return "offline";
    }
    return runner.jobId === undefined ? "idle" : "active";
  }

  queueJob(
    repo: Repo,
    fields: { name: string; runsOn: readonly string[]; script: string },
  ): Job {
    const job: Job = {
      id: this.#next.job++,
      repoId: repo.id,
      name: fields.name,
      runsOn: [...fields.runsOn],
      script: fields.script,
      attempt: 1,
      handle: crypto.randomUUID(),
      status: "waiting",
      taskId: 0,
      runnerId: undefined,
      exitCode: undefined,
    };
    this.#jobs.set(job.id, job);
    return job;
  }

  job(id: number): Job | undefined {
    return this.#jobs.get(id);
  }

  jobs(): Job[] {
    return [...this.#jobs.values()];
  }

  jobByHandle(handle: string): Job | undefined {
    return this.jobs().find((j) => j.handle === handle);
  }

  /**
   * The next attempt of a finished job: same id, attempt + 1, a fresh
   * handle (`PrepareNextAttempt`, §1.5), waiting again.
   */
  rerun(id: number): Job {
    const job = this.#jobs.get(id);
    if (!job) throw new Error(`No job ${id}`);
    if (job.status === "waiting" || job.status === "running") {
      throw new Error(`Job ${id} is ${job.status}; only a finished job reruns`);
    }
    Object.assign(job, {
      attempt: job.attempt + 1,
      handle: crypto.randomUUID(),
      status: "waiting",
      taskId: 0,
      runnerId: undefined,
      exitCode: undefined,
    });
    return job;
  }

  /**
   * A waiting or running job is cancelled; a running one's ephemeral
   * runner goes with it (`StopTask`, §1.6).
   */
  cancel(id: number): Job {
    const job = this.#jobs.get(id);
    if (!job) throw new Error(`No job ${id}`);
    if (job.status !== "waiting" && job.status !== "running") return job;
    const runner = job.runnerId === undefined
      ? undefined
      : this.#runners.get(job.runnerId);
    job.status = "cancelled";
    if (runner) this.#release(runner);
    return job;
  }

  /**
   * The task for `runner`: the waiting job with `handle` (any job it can
   * take without one), if the runner may serve its repository, declared
   * every label of its runs_on (`ItRunsOn`), and is not an ephemeral
   * runner that had its one task (`PickTask`, §1.5–§1.6).
   */
  take(runner: Runner, handle: string | undefined): Job | undefined {
    if (runner.jobId !== undefined) return undefined;
    if (runner.ephemeral && runner.tookTask) return undefined;
    const job = this.jobs().find((j) =>
      j.status === "waiting" &&
      (handle === undefined || j.handle === handle) &&
      this.#serves(runner, j) &&
      j.runsOn.every((label) => runner.labels.includes(label))
    );
    if (!job) return undefined;
    Object.assign(job, {
      status: "running",
      taskId: this.#next.task++,
      runnerId: runner.id,
    });
    runner.jobId = job.id;
    runner.tookTask = true;
    return job;
  }

  /**
   * The runner's task ended with `exitCode`; an ephemeral runner is then
   * deleted by Forgejo itself (`UpdateTask` → `DeleteRunner`, §1.6).
   */
  finish(runner: Runner, exitCode: number): Job | undefined {
    const job = runner.jobId === undefined
      ? undefined
      : this.#jobs.get(runner.jobId);
    if (!job) return undefined;
    Object.assign(job, {
      status: exitCode === 0 ? "success" : "failure",
      exitCode,
    });
    this.#release(runner);
    return job;
  }

  /** Whether a job belongs to a scope (an org's covers all its repositories). */
  inScope(job: Job, scope: RunnerScope): boolean {
    if (scope.kind === "repo") return job.repoId === scope.repoId;
    return this.#repos.get(job.repoId)?.ownerId === scope.orgId;
  }

  #serves(runner: Runner, job: Job): boolean {
    return this.inScope(job, runner.scope);
  }

  #release(runner: Runner): void {
    runner.jobId = undefined;
    if (runner.ephemeral) this.#runners.delete(runner.id);
  }

  #claimName(name: string): void {
    if (this.user(name) || this.org(name)) {
      throw new RangeError(`user already exists [name: ${name}]`);
    }
  }
}

export function sameScope(a: RunnerScope, b: RunnerScope): boolean {
  return a.kind === "repo"
    ? b.kind === "repo" && a.repoId === b.repoId
    : b.kind === "org" && a.orgId === b.orgId;
}

/** An ISO time to the second, as Forgejo writes them. */
export function timestamp(date = new Date()): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** `bytes` random bytes as hex: Forgejo's tokens are 40 hex digits. */
export function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}
