/**
 * A Forgejo instance (15 or newer) as a forge (product.md §12; the facts,
 * with sources, are in research/forgejo.md). Forgejo 15 sends no job
 * webhooks: each scope's waiting jobs are listed. For each, Forrest
 * registers an ephemeral runner (`POST …/actions/runners`, which answers
 * with the runner's own uuid and token) and the guest runs `forgejo-runner
 * one-job --handle <the job's handle>`, so that runner takes that job and
 * nothing else. With `package_token`, each job also gets a fresh
 * `write:package` token of its repository's CI user, deleted with the
 * runner.
 */

import { getLogger } from "@logtape/logtape";
import { join } from "node:path";
import {
  ciUserName,
  describeScope,
  type ForgejoConfig,
  type Scope,
  scopeKey,
} from "../../config/mod.ts";
import type { JobReport, RunnerReport } from "../../core/mod.ts";
import { Secret } from "../../log/mod.ts";
import {
  ForgeError,
  ForgeSetupError,
  type PollingForge,
  type RegisteredRunner,
  type RepoRef,
  type RunnerJob,
  type ScopeNeeds,
} from "../forge.ts";
import { CiUserStore, newPassword } from "./ci_users.ts";
import { ForgejoClient } from "./client.ts";

export interface ForgejoForgeOptions {
  readonly config: ForgejoConfig;
  readonly token: Secret;
  /** Where the CI users' passwords are kept: `base_dir/forgejo/<name>/`. */
  readonly stateDir: string;
  /** Delays before retries of reads (ms); tests shorten them. */
  readonly retryDelays?: readonly number[];
}

/** The first Forgejo with ephemeral runners and the runner API. */
const FIRST_VERSION = 15;
/** Forrest's own tokens of CI users are named like its runners. */
const TOKEN_PREFIX = "forrest-";
const PAGE = 50;

/** `ActionRunJob` of Forgejo 15 (the fields Forrest reads). */
interface RunJob {
  readonly id: number;
  readonly handle?: string;
  readonly repo_id: number;
  readonly runs_on?: readonly string[] | null;
  readonly status: string;
}

/** `ActionRunner` of Forgejo 15 (the fields Forrest reads). */
interface ApiRunner {
  readonly id: number;
  readonly name: string;
  readonly status?: "offline" | "idle" | "active";
}

interface AccessToken {
  readonly id: number;
  readonly name: string;
  readonly sha1?: string;
}

/** A package token made for one runner, deleted with it. */
interface PackageToken {
  readonly user: string;
  readonly name: string;
  readonly repo: RepoRef;
}

/** What marks a CI user as Forrest's: it never takes over another account. */
function ciUserFullName(repo: RepoRef): string {
  return `Forrest CI user of ${repo.owner}/${repo.repo}`;
}

export class ForgejoForge implements PollingForge {
  readonly name: string;
  readonly #config: ForgejoConfig;
  readonly #client: ForgejoClient;
  readonly #users: CiUserStore;
  readonly #log = getLogger(["forrest", "forgejo"]);
  /** Scope keys whose repositories' jobs get package tokens. */
  #packageScopes = new Set<string>();
  /** Repository ids to names, for jobs listed by organization. */
  readonly #repos = new Map<number, Promise<RepoRef>>();
  /** CI users made or checked in this process, by login. */
  readonly #ciUsers = new Map<string, Promise<Secret>>();
  /** Package tokens of live runners, by runner id. */
  readonly #tokens = new Map<number, PackageToken>();
  /** Names of package tokens being made: not leftovers for the sweep. */
  readonly #making = new Set<string>();
  /** Jobs without a handle (made before Forgejo 15) are told of once. */
  readonly #noHandle = new Set<number>();
  /** So are jobs whose labels no runner can declare. */
  readonly #unusable = new Set<number>();

  constructor(options: ForgejoForgeOptions) {
    this.name = options.config.name;
    this.#config = options.config;
    this.#client = new ForgejoClient({
      url: options.config.url,
      token: options.token,
      requestTimeout: options.config.requestTimeout,
      ...(options.retryDelays ? { retryDelays: options.retryDelays } : {}),
    });
    this.#users = new CiUserStore(options.stateDir);
  }

  /** Uses this token from now on (SIGHUP re-read its file). */
  setToken(token: Secret): void {
    this.#client.setToken(token);
  }

  /**
   * Checks the instance (Forgejo 15 or newer), the token, and that each
   * scope's runners can be listed; sweeps package tokens a crash left.
   */
  async connect(scopes: readonly ScopeNeeds[]): Promise<void> {
    this.#packageScopes = new Set(
      scopes.filter((s) => s.packageToken).map((s) => scopeKey(s.scope)),
    );
    const { data } = await this.#client.request<{ version?: string }>(
      "GET",
      "/version",
    );
    const version = data?.version ?? "";
    const major = Number(/^v?(\d+)\./.exec(version)?.[1] ?? NaN);
    if (!(major >= FIRST_VERSION)) {
      throw new ForgeSetupError(
        `${this.#where()} is version "${version}": Forrest needs Forgejo ` +
          `${FIRST_VERSION} or newer (ephemeral runners and the runner API)`,
      );
    }
    await this.#setup(this.#client.request("GET", "/user"), "the token");
    const problems: string[] = [];
    for (const { scope } of scopes) {
      try {
        await this.#setup(
          this.#client.request("GET", `${prefix(scope)}/actions/runners`, {
            query: { limit: 1 },
          }),
          describeScope(scope),
        );
      } catch (error) {
        if (!(error instanceof ForgeSetupError)) throw error;
        problems.push(error.message);
      }
    }
    if (this.#packageScopes.size > 0) {
      await this.#setup(
        this.#client.request("GET", "/admin/users", { query: { limit: 1 } }),
        "package_token (the CI users need a site administrator's token " +
          "with write:admin and read:user)",
      ).catch((error) => {
        if (!(error instanceof ForgeSetupError)) throw error;
        problems.push(error.message);
      });
    }
    if (problems.length > 0) throw new ForgeSetupError(problems.join("; "));
    await this.#sweepPackageTokens(scopes);
  }

  /** A 401, 403 or 404 here is the config's to fix. */
  async #setup<T>(request: Promise<T>, what: string): Promise<T> {
    try {
      return await request;
    } catch (error) {
      if (
        error instanceof ForgeError && error.status !== undefined &&
        [401, 403, 404].includes(error.status)
      ) {
        throw new ForgeSetupError(
          `${this.#where()}: ${what}: ${error.message}`,
        );
      }
      throw error;
    }
  }

  #where(): string {
    return `Forgejo "${this.name}" (${this.#config.url})`;
  }

  async listJobs(scope: Scope): Promise<JobReport[]> {
    const { data } = await this.#client.request<RunJob[] | null>(
      "GET",
      `${prefix(scope)}/actions/runners/jobs`,
    );
    // An empty queue is the JSON literal null.
    const reports: JobReport[] = [];
    for (const job of data ?? []) {
      const status = job.status === "waiting"
        ? "queued"
        : job.status === "running"
        ? "in_progress"
        : undefined;
      if (status === undefined) continue;
      if (!job.handle) {
        // Made before the upgrade to 15: no runner can ask for it by name.
        if (!this.#noHandle.has(job.id)) {
          this.#noHandle.add(job.id);
          this.#log.warn(
            "Job {id} of {scope} has no handle (it was queued before " +
              "Forgejo 15); Forrest cannot start a runner for it alone",
            { id: job.id, scope: describeScope(scope) },
          );
        }
        continue;
      }
      const labels = [...(job.runs_on ?? [])];
      if (labels.some((label) => /[,:\s]/.test(label))) {
        // forgejo-runner reads "name:scheme" and a list split at commas.
        if (!this.#unusable.has(job.id)) {
          this.#unusable.add(job.id);
          this.#log.warn(
            "Job {id} of {scope} asks for labels no runner can declare " +
              "({labels}): Forrest leaves it",
            {
              id: job.id,
              scope: describeScope(scope),
              labels: labels.join(" "),
            },
          );
        }
        continue;
      }
      const repo = await this.#repoOf(scope, job.repo_id);
      reports.push({
        id: job.id,
        forge: this.name,
        handle: job.handle,
        owner: repo.owner,
        repo: repo.repo,
        status,
        labels,
        runnerName: null,
      });
    }
    return reports;
  }

  /** A job's repository: the scope's own, or looked up by id (cached). */
  #repoOf(scope: Scope, id: number): Promise<RepoRef> {
    if (scope.kind === "repository") {
      return Promise.resolve({ owner: scope.owner, repo: scope.repo });
    }
    let repo = this.#repos.get(id);
    if (repo === undefined) {
      repo = this.#client.request<{ name: string; owner: { login: string } }>(
        "GET",
        `/repositories/${id}`,
      ).then(({ data }) => ({ owner: data.owner.login, repo: data.name }));
      repo.catch(() => this.#repos.delete(id));
      this.#repos.set(id, repo);
    }
    return repo;
  }

  async registerRunner(
    scope: Scope,
    name: string,
    labels: readonly string[],
    _runnerGroup: string | undefined,
    job?: RunnerJob,
  ): Promise<RegisteredRunner> {
    if (job === undefined) {
      throw new ForgeError(
        "Forgejo runners are made for one job: no job handle given",
        undefined,
      );
    }
    const { data } = await this.#client.request<
      { id: number; uuid: string; token: string }
    >("POST", `${prefix(scope)}/actions/runners`, {
      body: {
        name,
        description: `Forrest machine for job ${job.handle}`,
        ephemeral: true,
      },
    });
    const identity: Record<string, Secret> = {
      FORGE_URL: new Secret(this.#config.guestUrl),
      RUNNER_UUID: new Secret(data.uuid),
      RUNNER_TOKEN: new Secret(data.token),
      JOB_HANDLE: new Secret(job.handle),
      // The job's own spelling: Forgejo matches labels exactly, and a
      // runner must declare every label of the job's runs-on.
      RUNNER_LABELS: new Secret((job.labels ?? labels).join(",")),
    };
    if (this.#packageScopes.has(scopeKey(scope))) {
      // A sweep (a reload's connect) running meanwhile must not take it.
      this.#making.add(name);
      try {
        const token = await this.#packageToken(job.repo, name);
        this.#tokens.set(data.id, { user: token.user, name, repo: job.repo });
        identity.PACKAGE_USER = new Secret(token.user);
        identity.PACKAGE_TOKEN = token.secret;
      } catch (error) {
        await this.deleteRunner(scope, data.id).catch(() => {});
        throw error;
      } finally {
        this.#making.delete(name);
      }
    }
    return { id: data.id, name, identity };
  }

  /** A fresh write:package token of the repository's CI user. */
  async #packageToken(
    repo: RepoRef,
    name: string,
  ): Promise<{ user: string; secret: Secret }> {
    const user = ciUserName(repo.owner, repo.repo);
    const password = await this.#ciUser(user, repo);
    const { data } = await this.#client.request<AccessToken>(
      "POST",
      `/users/${encodeURIComponent(user)}/tokens`,
      {
        auth: { kind: "basic", user, password },
        body: { name, scopes: ["write:package"] },
      },
    );
    if (!data.sha1) {
      throw new ForgeError(
        `POST /users/${user}/tokens: no token in the answer`,
        undefined,
      );
    }
    return { user, secret: new Secret(data.sha1) };
  }

  /**
   * The CI user's password, checked once per process: the user is made
   * when it does not exist (without the must-change-password flag, which
   * would make Forgejo refuse every request as it), and its password set
   * anew when Forrest lost it. A user of that name that Forrest did not
   * make (its full name says so) is never taken over.
   */
  #ciUser(login: string, repo: RepoRef): Promise<Secret> {
    let password = this.#ciUsers.get(login);
    if (password === undefined) {
      password = this.#ensureCiUser(login, repo);
      password.catch(() => this.#ciUsers.delete(login));
      this.#ciUsers.set(login, password);
    }
    return password;
  }

  async #ensureCiUser(login: string, repo: RepoRef): Promise<Secret> {
    const kept = await this.#users.password(login);
    const password = kept ?? newPassword();
    // Kept before the user is made or changed: a crash in between loses
    // nothing, as this runs again in the next process.
    if (kept === undefined) await this.#users.setPassword(login, password);
    const path = `/users/${encodeURIComponent(login)}`;
    const found = await this.#client.request<{ full_name?: string }>(
      "GET",
      path,
      { accept: [404] },
    );
    const fullName = ciUserFullName(repo);
    if (found.status === 404) {
      await this.#client.request("POST", "/admin/users", {
        body: {
          username: login,
          full_name: fullName,
          email: `${login}@noreply.invalid`,
          password: password.reveal(),
          must_change_password: false,
        },
      });
      this.#log.info("Created CI user {user}", { user: login });
      return password;
    }
    if (found.data?.full_name !== fullName) {
      throw new ForgeError(
        `user ${login} exists and is not Forrest's CI user of ` +
          `${repo.owner}/${repo.repo} (its full name is not "${fullName}"): ` +
          "rename or delete it, or leave package_token out",
        undefined,
      );
    }
    if (kept === undefined) {
      await this.#client.request("PATCH", `/admin${path}`, {
        body: { password: password.reveal(), must_change_password: false },
      });
      this.#log.info("Set a new password for CI user {user}", { user: login });
    }
    return password;
  }

  async deleteRunner(scope: Scope, id: number): Promise<void> {
    // An ephemeral runner is deleted by Forgejo once its job is done.
    await this.#client.request(
      "DELETE",
      `${prefix(scope)}/actions/runners/${id}`,
      { accept: [404] },
    );
    const token = this.#tokens.get(id);
    if (token === undefined) return;
    await this.#deleteToken(token.user, token.name, token.repo);
    this.#tokens.delete(id);
  }

  /** Whether a runner of this process holds (or is getting) this token. */
  #isLive(name: string): boolean {
    return this.#making.has(name) ||
      [...this.#tokens.values()].some((token) => token.name === name);
  }

  async #deleteToken(
    user: string,
    name: string,
    repo: RepoRef,
  ): Promise<void> {
    const password = await this.#ciUser(user, repo);
    await this.#client.request(
      "DELETE",
      `/users/${encodeURIComponent(user)}/tokens/${encodeURIComponent(name)}`,
      { auth: { kind: "basic", user, password }, accept: [404] },
    );
  }

  async listRunners(scope: Scope): Promise<RunnerReport[]> {
    const runners: RunnerReport[] = [];
    for (let page = 1;; page++) {
      const { data, headers } = await this.#client.request<ApiRunner[] | null>(
        "GET",
        `${prefix(scope)}/actions/runners`,
        { query: { page, limit: PAGE } },
      );
      const items = data ?? [];
      for (const runner of items) {
        runners.push({
          id: runner.id,
          name: runner.name,
          online: runner.status !== undefined && runner.status !== "offline",
          busy: runner.status === "active",
        });
      }
      const total = Number(headers.get("x-total-count") ?? NaN);
      const done = Number.isFinite(total)
        ? runners.length >= total
        : items.length < PAGE;
      if (done || items.length === 0) return runners;
    }
  }

  /**
   * Tokens named `forrest-*` of the CI users of package_token scopes that
   * no live runner holds: left by a crash (their runners are swept by the
   * janitor), deleted.
   */
  async #sweepPackageTokens(scopes: readonly ScopeNeeds[]): Promise<void> {
    for (const { scope, packageToken } of scopes) {
      if (!packageToken || scope.kind !== "repository") continue;
      const user = ciUserName(scope.owner, scope.repo);
      try {
        const { data } = await this.#client.request<AccessToken[] | null>(
          "GET",
          `/users/${encodeURIComponent(user)}/tokens`,
          { accept: [404] },
        );
        if (!Array.isArray(data)) continue;
        for (const token of data) {
          if (
            !token.name.startsWith(TOKEN_PREFIX) || this.#isLive(token.name)
          ) continue;
          await this.#deleteToken(user, token.name, scope);
          this.#log.info("Deleted package token {name} of {user} (left over)", {
            name: token.name,
            user,
          });
        }
      } catch (error) {
        this.#log.warn("Cannot sweep the package tokens of {user}: {error}", {
          user,
          error: (error as Error).message,
        });
      }
    }
  }
}

/** The API path of a scope: `/repos/OWNER/REPO` or `/orgs/ORG`. */
function prefix(scope: Scope): string {
  switch (scope.kind) {
    case "repository":
      return `/repos/${encodeURIComponent(scope.owner)}/${
        encodeURIComponent(scope.repo)
      }`;
    case "organization":
      return `/orgs/${encodeURIComponent(scope.org)}`;
    case "enterprise":
      throw new ForgeError("Forgejo has no enterprises", undefined);
  }
}

/** Where an instance keeps its state below base_dir. */
export function forgejoStateDir(baseDir: string, name: string): string {
  return join(baseDir, "forgejo", name);
}
