/**
 * The GitHub forge, at every scope (product.md §11): runners of
 * repositories, organizations and enterprises. It authenticates as a
 * GitHub App (JWT from its private key, installation tokens cached by
 * @octokit/app; each scope's installation is looked up at start, so no
 * webhook is needed first), or with a personal access token, which is
 * also the only way to enterprise runners. Requests are retried on 5xx
 * answers and follow GitHub's rate-limit rules (@octokit/plugin-retry and
 * plugin-throttling). Runner groups are named in the config and looked up
 * here, once per name, and again when a registration says the id is gone.
 */

import { getLogger } from "@logtape/logtape";
import { App } from "@octokit/app";
import { Octokit } from "@octokit/core";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import {
  describeScope,
  type Scope,
  scopeKey,
  scopeName,
  scopeSegments,
} from "../../config/mod.ts";
import type { JobReport, RunnerReport } from "../../core/mod.ts";
import { Secret } from "../../log/mod.ts";
import {
  ForgeError,
  ForgeSetupError,
  type JobChanges,
  type RegisteredRunner,
  type RepoRef,
  type ScopeNeeds,
  type WebhookForge,
  type WebhookResult,
} from "../forge.ts";
import { EtagCache } from "./etag_cache.ts";
import { parseGitHubWebhook } from "./webhook.ts";

export interface GitHubForgeOptions {
  /** The App; repositories and organizations use it when set. */
  readonly app?: { readonly appId: number; readonly privateKey: Secret };
  /** A personal access token: enterprises, and everything without an App. */
  readonly token?: Secret;
  readonly webhookSecret: Secret;
  /** https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise. */
  readonly apiUrl: string;
  /** Retries of a failed request (5xx, timeouts); plugin-retry's default 3. */
  readonly retries?: number;
  /** Milliseconds before a request is given up (and retried). */
  readonly requestTimeout?: number;
}

const PER_PAGE = 100;
/** More pages than this of runs or runners is not a Forrest setup. */
const MAX_PAGES = 20;
/** GitHub's default runner group, at every scope. */
const DEFAULT_RUNNER_GROUP_ID = 1;
/**
 * Listings whose ETags are kept: two per repository and one per active
 * run, for some thousands of repositories.
 */
const ETAGS_KEPT = 10_000;
/** What a conditional request answered 304 Not Modified gives back. */
const NOT_MODIFIED = Symbol("not modified");

/** A job as run listings and `GET …/actions/jobs/{id}` show it. */
interface ApiJob {
  readonly id: number;
  readonly status: JobReport["status"];
  readonly labels: string[];
  readonly runner_name?: string | null;
  readonly created_at: string;
}

type Client = Octokit;

interface RunnerGroup {
  readonly id: number;
  readonly name: string;
  readonly visibility: string;
  readonly allows_public_repositories?: boolean;
}

export class GitHubForge implements WebhookForge {
  readonly #app: App | undefined;
  readonly #Octokit: typeof Octokit;
  #token: Client | undefined;
  #webhookSecret: Secret;
  /** Installation client per scope key. */
  readonly #installations = new Map<string, Promise<Client>>();
  /** Runner groups per scope key and name. */
  readonly #groups = new Map<string, Promise<RunnerGroup>>();
  /** Listings of the quick poll by URL: their ETags, and what they held. */
  readonly #etags = new EtagCache<readonly unknown[]>(ETAGS_KEPT);
  /** The queued and running runs the quick poll last saw, per repository. */
  readonly #activeRuns = new Map<string, ReadonlySet<number>>();

  constructor(options: GitHubForgeOptions) {
    const log = getLogger(["forrest", "github"]);
    this.#Octokit = Octokit.plugin(retry, throttling).defaults({
      baseUrl: options.apiUrl,
      userAgent: "forrest",
      // A GitHub that does not answer must not stall a machine forever:
      // the request fails, and plugin-retry tries again.
      request: { fetch: timedFetch(options.requestTimeout ?? 30_000) },
      retry: { retries: options.retries ?? 3 },
      throttle: {
        onRateLimit: retryLimited("rate limit"),
        onSecondaryRateLimit: retryLimited("secondary rate limit"),
      },
      log: {
        debug: () => {},
        info: () => {},
        warn: (message: string) => log.warn("octokit: {message}", { message }),
        error: (message: string) =>
          log.error("octokit: {message}", { message }),
      },
    });
    this.#app = options.app === undefined ? undefined : new App({
      appId: options.app.appId,
      privateKey: options.app.privateKey.reveal(),
      Octokit: this.#Octokit,
    });
    this.setToken(options.token);
    this.#webhookSecret = options.webhookSecret;
  }

  /**
   * Checks deliveries against `secret` from now on (a config reload); ones
   * signed with the old secret are refused.
   */
  setWebhookSecret(secret: Secret): void {
    this.#webhookSecret = secret;
  }

  /** Uses this token from now on (a config reload, a rotated token). */
  setToken(token: Secret | undefined): void {
    this.#token = token === undefined
      ? undefined
      : new this.#Octokit({ auth: token.reveal() });
  }

  async connect(scopes: readonly ScopeNeeds[]): Promise<void> {
    const results = await Promise.allSettled(
      scopes.map((needs) => this.#connectScope(needs)),
    );
    const failed = results.flatMap((result, i) =>
      result.status === "rejected"
        ? [{ scope: scopes[i]!.scope, error: result.reason }]
        : []
    );
    if (failed.length === 0) return;
    const text = failed.map(({ scope, error }) =>
      `${describeScope(scope)}: ${message(error)}`
    ).join("; ");
    // What the config must change outranks what may pass by itself.
    throw failed.some(({ error }) => error instanceof ForgeSetupError)
      ? new ForgeSetupError(text)
      : new ForgeError(text, undefined);
  }

  async #connectScope(needs: ScopeNeeds): Promise<void> {
    await this.#client(needs.scope);
    for (const name of needs.runnerGroups) {
      const group = await this.#group(needs.scope, name);
      if (group.allows_public_repositories === false) {
        getLogger(["forrest", "github"]).warn(
          "Runner group {group} of {scope} is closed to public repositories " +
            "(GitHub's default): their jobs never reach its runners, though " +
            "Forrest starts machines for them; list only private repositories, " +
            "or allow public ones in the group's settings",
          { group: group.name, scope: describeScope(needs.scope) },
        );
      }
      if (
        needs.scope.kind === "organization" && group.visibility === "selected"
      ) {
        await this.#checkGroupRepositories(
          needs.scope,
          group,
          needs.repositories,
        );
      }
    }
  }

  /**
   * An organization group open to selected repositories only must list
   * every repository the organization's machines serve by name.
   */
  async #checkGroupRepositories(
    scope: Extract<Scope, { kind: "organization" }>,
    group: RunnerGroup,
    repositories: readonly string[] | undefined,
  ): Promise<void> {
    const { org } = scope;
    const allowed = new Set<string>();
    await this.#pages(
      scope,
      "GET /orgs/{org}/actions/runner-groups/{runner_group_id}/repositories",
      { org, runner_group_id: group.id },
      (data: { repositories: { name: string }[] }) => {
        for (const repo of data.repositories) {
          allowed.add(repo.name.toLowerCase());
        }
        return data.repositories.length;
      },
    );
    if (repositories === undefined) {
      // Forrest would start machines for jobs of every repository, and
      // those outside the group's selection would never get their job.
      throw new ForgeSetupError(
        `runner group "${group.name}" is open to selected repositories ` +
          `only: list them in [organizations.${org}] repositories (it ` +
          `selects ${[...allowed].join(", ") || "none"})`,
      );
    }
    const refused = repositories.filter((r) => !allowed.has(r.toLowerCase()));
    if (refused.length > 0) {
      throw new ForgeSetupError(
        `runner group "${group.name}" is not open to ${
          refused.map((r) => `${org}/${r}`).join(", ")
        } (its repository access is "selected repositories"); add them to ` +
          "the group on GitHub, or remove them from `repositories`",
      );
    }
  }

  async registerRunner(
    scope: Scope,
    name: string,
    labels: readonly string[],
    runnerGroup: string | undefined,
  ): Promise<RegisteredRunner> {
    const groupId = runnerGroup === undefined
      ? DEFAULT_RUNNER_GROUP_ID
      : (await this.#group(scope, runnerGroup)).id;
    const { route, params } = scoped(
      scope,
      "POST",
      "/actions/runners/generate-jitconfig",
    );
    try {
      const { data } = await this.#call(
        scope,
        (octokit) =>
          octokit.request(route, {
            ...params,
            name,
            runner_group_id: groupId,
            labels: [...labels],
          }),
      );
      const jit = data as {
        runner: { id: number; name: string };
        encoded_jit_config: string;
      };
      return {
        id: jit.runner.id,
        name: jit.runner.name,
        identity: { JITCONFIG: new Secret(jit.encoded_jit_config) },
      };
    } catch (error) {
      // The group may have been deleted or made again: look it up anew.
      if (runnerGroup !== undefined) {
        this.#groups.delete(groupKey(scope, runnerGroup));
      }
      throw error;
    }
  }

  async deleteRunner(scope: Scope, id: number): Promise<void> {
    const { route, params } = scoped(
      scope,
      "DELETE",
      "/actions/runners/{runner_id}",
    );
    try {
      await this.#call(
        scope,
        (octokit) => octokit.request(route, { ...params, runner_id: id }),
      );
    } catch (error) {
      if (error instanceof ForgeError && error.status === 404) return;
      throw error;
    }
  }

  async listRunners(scope: Scope): Promise<RunnerReport[]> {
    const runners: RunnerReport[] = [];
    const { route, params } = scoped(scope, "GET", "/actions/runners");
    await this.#pages(
      scope,
      route,
      params,
      (data: {
        total_count: number;
        runners: { id: number; name: string; status: string; busy: boolean }[];
      }) => {
        for (const runner of data.runners) {
          runners.push({
            id: runner.id,
            name: runner.name,
            online: runner.status === "online",
            busy: runner.busy,
          });
        }
        return runners.length >= data.total_count ? 0 : data.runners.length;
      },
    );
    return runners;
  }

  async listRepositories(org: string): Promise<RepoRef[]> {
    const repos: RepoRef[] = [];
    const scope: Scope = { kind: "organization", org };
    await this.#pages(
      scope,
      "GET /orgs/{org}/repos",
      { org, type: "all" },
      (data: {
        name: string;
        owner: { login: string };
        archived?: boolean;
        disabled?: boolean;
      }[]) => {
        for (const repo of data) {
          // Archived and disabled repositories run no workflows.
          if (repo.archived || repo.disabled) continue;
          repos.push({ owner: repo.owner.login, repo: repo.name });
        }
        return data.length;
      },
    );
    return repos;
  }

  async listActiveJobs(repo: RepoRef, since: Date): Promise<JobReport[]> {
    const scope: Scope = { kind: "repository", ...repo };
    const runIds = new Set<number>();
    for (const status of ["queued", "in_progress"] as const) {
      await this.#pages(
        scope,
        "GET /repos/{owner}/{repo}/actions/runs",
        {
          owner: repo.owner,
          repo: repo.repo,
          status,
          created: `>=${since.toISOString().replace(/\.\d+Z$/, "Z")}`,
        },
        (data: { workflow_runs: { id: number }[] }) => {
          for (const run of data.workflow_runs) runIds.add(Number(run.id));
          return data.workflow_runs.length;
        },
      );
    }
    const jobs: JobReport[] = [];
    for (const runId of runIds) {
      await this.#pages(
        scope,
        "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
        { owner: repo.owner, repo: repo.repo, run_id: runId, filter: "latest" },
        (data: { jobs: ApiJob[] }) => {
          for (const job of data.jobs) jobs.push(jobReport(repo, job));
          return data.jobs.length;
        },
      );
    }
    return jobs;
  }

  /**
   * The quick poll of a repository: its queued and in-progress runs, and
   * the jobs of each (a later job of a running workflow is queued inside
   * an in-progress run, which may look no different in the runs listing),
   * all with If-None-Match. Without a `created` filter, so that each
   * listing keeps its URL and its ETag from one call to the next: GitHub
   * gives up queued runs after a day anyway. A run that left both
   * listings since the last call has its jobs listed once more: how they
   * ended (a queued job cancelled) is news too.
   */
  async listJobChanges(repo: RepoRef): Promise<JobChanges> {
    const scope: Scope = { kind: "repository", ...repo };
    const key = `${repo.owner}/${repo.repo}`.toLowerCase();
    const cost = { requests: 0, notModified: 0 };
    const runIds = new Set<number>();
    for (const status of ["queued", "in_progress"] as const) {
      const runs = await this.#conditionalPages(
        scope,
        "GET /repos/{owner}/{repo}/actions/runs",
        { owner: repo.owner, repo: repo.repo, status },
        (data: { workflow_runs: { id: number }[] }) =>
          data.workflow_runs.map((run) => Number(run.id)),
        cost,
      );
      for (const id of runs.values) runIds.add(id);
    }
    const ended = [...this.#activeRuns.get(key) ?? []].filter((id) =>
      !runIds.has(id)
    );
    const jobs: JobReport[] = [];
    for (const runId of [...runIds, ...ended]) {
      const listed = await this.#conditionalPages(
        scope,
        "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
        { owner: repo.owner, repo: repo.repo, run_id: runId, filter: "latest" },
        (data: { jobs: ApiJob[] }) =>
          data.jobs.map((job) => jobReport(repo, job)),
        cost,
      );
      if (listed.changed) jobs.push(...listed.values);
    }
    // Only now: when a listing failed, the runs that ended are listed
    // again next time.
    if (runIds.size > 0) this.#activeRuns.set(key, runIds);
    else this.#activeRuns.delete(key);
    return { jobs, ...cost };
  }

  async getJob(repo: RepoRef, id: number): Promise<JobReport> {
    const { data } = await this.#call(
      { kind: "repository", ...repo },
      (octokit) =>
        octokit.request("GET /repos/{owner}/{repo}/actions/jobs/{job_id}", {
          owner: repo.owner,
          repo: repo.repo,
          job_id: id,
        }),
    );
    return jobReport(repo, data as ApiJob);
  }

  parseWebhook(headers: Headers, body: Uint8Array): WebhookResult {
    return parseGitHubWebhook(this.#webhookSecret, headers, body);
  }

  /**
   * GETs a listing page by page (100 each, at most MAX_PAGES): `take`
   * reads one page and returns how many entries it had; fewer than a
   * full page is the last.
   */
  async #pages<T>(
    scope: Scope,
    route: string,
    params: Record<string, unknown>,
    take: (data: T) => number,
  ): Promise<void> {
    for (let page = 1; page <= MAX_PAGES; page++) {
      const { data } = await this.#call(
        scope,
        (octokit) =>
          octokit.request(route, { ...params, per_page: PER_PAGE, page }),
      );
      if (take(data as T) < PER_PAGE) return;
    }
  }

  /**
   * A listing page by page with If-None-Match, each page's ETag and
   * entries kept: an unchanged page is answered 304 and its entries come
   * from the cache. `changed` when some page was not; `cost` counts the
   * requests and the 304s.
   */
  async #conditionalPages<T, D>(
    scope: Scope,
    route: string,
    params: Record<string, unknown>,
    read: (data: D) => T[],
    cost: { requests: number; notModified: number },
  ): Promise<{ changed: boolean; values: T[] }> {
    const values: T[] = [];
    let changed = false;
    for (let page = 1; page <= MAX_PAGES; page++) {
      const key = JSON.stringify([route, params, page]);
      const known = this.#etags.get(key) as
        | { etag: string; value: T[] }
        | undefined;
      cost.requests++;
      const response = await this.#call(
        scope,
        (octokit) =>
          octokit.request(route, {
            ...params,
            per_page: PER_PAGE,
            page,
            headers: known ? { "if-none-match": known.etag } : {},
          }).catch((error: unknown): typeof NOT_MODIFIED => {
            if (statusOf(error) === 304 && known) return NOT_MODIFIED;
            throw error;
          }),
      );
      let entries: T[];
      if (response === NOT_MODIFIED) {
        cost.notModified++;
        entries = known!.value;
      } else {
        changed = true;
        entries = read(response.data as D);
        const etag = response.headers.etag;
        if (etag) this.#etags.set(key, etag, entries);
        else this.#etags.delete(key);
      }
      values.push(...entries);
      if (entries.length < PER_PAGE) break;
    }
    return { changed, values };
  }

  /** A runner group of a scope by name, looked up once. */
  #group(scope: Scope, name: string): Promise<RunnerGroup> {
    const key = groupKey(scope, name);
    let found = this.#groups.get(key);
    if (found === undefined) {
      found = this.#findGroup(scope, name);
      found.catch(() => this.#groups.delete(key));
      this.#groups.set(key, found);
    }
    return found;
  }

  async #findGroup(scope: Scope, name: string): Promise<RunnerGroup> {
    if (scope.kind === "repository") {
      throw new ForgeSetupError(
        "repository runners have no runner group but the default",
      );
    }
    const groups: RunnerGroup[] = [];
    const { route, params } = scoped(scope, "GET", "/actions/runner-groups");
    await this.#pages(
      scope,
      route,
      params,
      (data: { runner_groups: RunnerGroup[] }) => {
        groups.push(...data.runner_groups);
        return data.runner_groups.length;
      },
    );
    const found = groups.find((g) => g.name === name) ??
      groups.find((g) => g.name.toLowerCase() === name.toLowerCase());
    if (found) return found;
    const names = groups.map((g) => `"${g.name}"`).join(", ");
    throw new ForgeSetupError(
      `runner group "${name}" does not exist in ${describeScope(scope)}` +
        (names ? ` (it has ${names})` : ""),
    );
  }

  /**
   * One API call in a scope. With an App, a 401 or 404 may mean that the
   * App was reinstalled (a new installation id) or its token revoked: look
   * the installation up again and try once more.
   */
  async #call<T>(
    scope: Scope,
    request: (octokit: Client) => Promise<T>,
  ): Promise<T> {
    try {
      return await request(await this.#client(scope));
    } catch (error) {
      const status = statusOf(error);
      if (!this.#usesApp(scope) || (status !== 401 && status !== 404)) {
        throw forgeError(error);
      }
    }
    this.#installations.delete(installationKey(scope));
    try {
      return await request(await this.#client(scope));
    } catch (error) {
      throw forgeError(error);
    }
  }

  /** Enterprises always use the token (Apps cannot register their runners). */
  #usesApp(scope: Scope): boolean {
    return this.#app !== undefined && scope.kind !== "enterprise";
  }

  #client(scope: Scope): Promise<Client> {
    if (!this.#usesApp(scope)) {
      return this.#token ? Promise.resolve(this.#token) : Promise.reject(
        new ForgeSetupError(
          `${describeScope(scope)} needs [github] token_file` +
            (scope.kind === "enterprise"
              ? " (GitHub Apps cannot register enterprise runners)"
              : ""),
        ),
      );
    }
    // An App is installed on an account: all repositories of an owner
    // share the installation of the owner, whichever call found it.
    const key = installationKey(scope);
    let found = this.#installations.get(key);
    if (found === undefined) {
      const app = this.#app!;
      const lookup = scope.kind === "repository"
        ? app.octokit.request("GET /repos/{owner}/{repo}/installation", {
          owner: scope.owner,
          repo: scope.repo,
        })
        : app.octokit.request("GET /orgs/{org}/installation", {
          org: scopeSegments(scope)[1],
        });
      found = lookup.then(
        ({ data }) => app.getInstallationOctokit(data.id) as Promise<Client>,
        (error) => {
          throw new ForgeError(
            `no GitHub App installation for ${scopeName(scope)}: ${
              message(error)
            }`,
            statusOf(error),
          );
        },
      );
      // A failed lookup is not cached: the next call tries again.
      found.catch(() => this.#installations.delete(key));
      this.#installations.set(key, found);
    }
    return found;
  }
}

/**
 * A route under a scope's API prefix: `/repos/{owner}/{repo}`,
 * `/orgs/{org}` or `/enterprises/{enterprise}`, with its parameters.
 */
function scoped(
  scope: Scope,
  method: "GET" | "POST" | "DELETE",
  tail: string,
): { route: string; params: Record<string, string> } {
  switch (scope.kind) {
    case "repository":
      return {
        route: `${method} /repos/{owner}/{repo}${tail}`,
        params: { owner: scope.owner, repo: scope.repo },
      };
    case "organization":
      return {
        route: `${method} /orgs/{org}${tail}`,
        params: { org: scope.org },
      };
    case "enterprise":
      return {
        route: `${method} /enterprises/{enterprise}${tail}`,
        params: { enterprise: scope.enterprise },
      };
  }
}

/** A job of a listing, or asked for by id, as the core takes it. */
function jobReport(repo: RepoRef, job: ApiJob): JobReport {
  const createdAt = Date.parse(job.created_at);
  return {
    id: Number(job.id),
    owner: repo.owner,
    repo: repo.repo,
    status: job.status,
    labels: job.labels,
    runnerName: job.runner_name ?? null,
    ...(Number.isFinite(createdAt) ? { createdAt } : {}),
  };
}

/** The account an App installation of this scope is on, lower case. */
function installationKey(scope: Scope): string {
  return (scope.kind === "repository" ? scope.owner : scopeSegments(scope)[1])
    .toLowerCase();
}

function groupKey(scope: Scope, name: string): string {
  return `${scopeKey(scope)}\0${name.toLowerCase()}`;
}

/**
 * What plugin-throttling calls when GitHub limits us: log it and wait as
 * told (Retry-After), up to 3 times per request.
 */
function retryLimited(kind: string) {
  return (
    after: number,
    request: { method: string; url: string },
    _octokit: unknown,
    count: number,
  ): boolean => {
    getLogger(["forrest", "github"]).warn(
      `GitHub ${kind} on {method} {url}; retry {count} in {after} s`,
      { method: request.method, url: request.url, count, after },
    );
    return count < 3;
  };
}

function timedFetch(timeout: number): typeof fetch {
  return (input, init) => {
    const signals = [AbortSignal.timeout(timeout)];
    if (init?.signal) signals.push(init.signal);
    return fetch(input, { ...init, signal: AbortSignal.any(signals) });
  };
}

function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : undefined;
}

/** Octokit's errors carry the request, headers included: keep only words. */
function forgeError(error: unknown): ForgeError {
  if (error instanceof ForgeError) return error;
  return new ForgeError(message(error), statusOf(error));
}

function message(error: unknown): string {
  const status = statusOf(error);
  const text = error instanceof Error ? error.message : String(error);
  return status === undefined ? text : `${status}: ${text}`;
}
