/**
 * The GitHub forge: a GitHub App (JWT from its private key, installation
 * tokens cached by @octokit/app), with retries of 5xx answers and GitHub's
 * rate-limit rules (@octokit/plugin-retry and plugin-throttling). Each
 * configured repository's installation is looked up at start, so Forrest
 * needs no webhook before it can act (the original did), and again when a
 * call says the installation is gone.
 */

import { getLogger } from "@logtape/logtape";
import { App } from "@octokit/app";
import { Octokit } from "@octokit/core";
import { retry } from "@octokit/plugin-retry";
import { throttling } from "@octokit/plugin-throttling";
import type { JobReport, RunnerReport } from "../../core/mod.ts";
import { Secret } from "../../log/mod.ts";
import {
  type Forge,
  ForgeError,
  type RegisteredRunner,
  type RepoRef,
  type WebhookResult,
} from "../forge.ts";
import { parseGitHubWebhook } from "./webhook.ts";

export interface GitHubForgeOptions {
  readonly appId: number;
  readonly privateKey: Secret;
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
/** GitHub's default runner group, which repository runners belong to. */
const RUNNER_GROUP_ID = 1;

type InstallationOctokit = Awaited<ReturnType<App["getInstallationOctokit"]>>;

export class GitHubForge implements Forge {
  readonly #app: App;
  #webhookSecret: Secret;
  /** Installation client per lower-case `owner/repo`. */
  readonly #installations = new Map<string, Promise<InstallationOctokit>>();

  constructor(options: GitHubForgeOptions) {
    const log = getLogger(["forrest", "github"]);
    const ForrestOctokit = Octokit.plugin(retry, throttling).defaults({
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
    this.#app = new App({
      appId: options.appId,
      privateKey: options.privateKey.reveal(),
      Octokit: ForrestOctokit,
    });
    this.#webhookSecret = options.webhookSecret;
  }

  /**
   * Checks deliveries against `secret` from now on (a config reload); ones
   * signed with the old secret are refused.
   */
  setWebhookSecret(secret: Secret): void {
    this.#webhookSecret = secret;
  }

  async connect(repos: readonly RepoRef[]): Promise<void> {
    const results = await Promise.allSettled(
      repos.map((repo) => this.#installation(repo)),
    );
    const failed = results.flatMap((result, i) =>
      result.status === "rejected"
        ? [`${repos[i]!.owner}/${repos[i]!.repo}: ${message(result.reason)}`]
        : []
    );
    if (failed.length) {
      throw new ForgeError(
        `No GitHub App installation for ${failed.join("; ")}`,
        undefined,
      );
    }
  }

  async registerRunner(
    repo: RepoRef,
    name: string,
    labels: readonly string[],
  ): Promise<RegisteredRunner> {
    const { data } = await this.#call(repo, (octokit) =>
      octokit.request(
        "POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig",
        {
          owner: repo.owner,
          repo: repo.repo,
          name,
          runner_group_id: RUNNER_GROUP_ID,
          labels: [...labels],
        },
      ));
    return {
      id: data.runner.id,
      name: data.runner.name,
      jitConfig: new Secret(data.encoded_jit_config),
    };
  }

  async deleteRunner(repo: RepoRef, id: number): Promise<void> {
    try {
      await this.#call(repo, (octokit) =>
        octokit.request(
          "DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}",
          { owner: repo.owner, repo: repo.repo, runner_id: id },
        ));
    } catch (error) {
      if (error instanceof ForgeError && error.status === 404) return;
      throw error;
    }
  }

  async listRunners(repo: RepoRef): Promise<RunnerReport[]> {
    const runners: RunnerReport[] = [];
    for (let page = 1; page <= MAX_PAGES; page++) {
      const { data } = await this.#call(
        repo,
        (octokit) =>
          octokit.request("GET /repos/{owner}/{repo}/actions/runners", {
            owner: repo.owner,
            repo: repo.repo,
            per_page: PER_PAGE,
            page,
          }),
      );
      for (const runner of data.runners) {
        runners.push({
          id: runner.id,
          name: runner.name,
          online: runner.status === "online",
          busy: runner.busy,
        });
      }
      if (
        data.runners.length < PER_PAGE || runners.length >= data.total_count
      ) {
        break;
      }
    }
    return runners;
  }

  async listActiveJobs(repo: RepoRef, since: Date): Promise<JobReport[]> {
    const runIds = new Set<number>();
    for (const status of ["queued", "in_progress"] as const) {
      for (let page = 1; page <= MAX_PAGES; page++) {
        const { data } = await this.#call(
          repo,
          (octokit) =>
            octokit.request("GET /repos/{owner}/{repo}/actions/runs", {
              owner: repo.owner,
              repo: repo.repo,
              status,
              created: `>=${since.toISOString().replace(/\.\d+Z$/, "Z")}`,
              per_page: PER_PAGE,
              page,
            }),
        );
        for (const run of data.workflow_runs) runIds.add(Number(run.id));
        if (data.workflow_runs.length < PER_PAGE) break;
      }
    }
    const jobs: JobReport[] = [];
    for (const runId of runIds) {
      for (let page = 1; page <= MAX_PAGES; page++) {
        const { data } = await this.#call(repo, (octokit) =>
          octokit.request(
            "GET /repos/{owner}/{repo}/actions/runs/{run_id}/jobs",
            {
              owner: repo.owner,
              repo: repo.repo,
              run_id: runId,
              filter: "latest",
              per_page: PER_PAGE,
              page,
            },
          ));
        for (const job of data.jobs) {
          const createdAt = Date.parse(job.created_at);
          jobs.push({
            id: Number(job.id),
            owner: repo.owner,
            repo: repo.repo,
            status: job.status,
            labels: job.labels,
            runnerName: job.runner_name ?? null,
            ...(Number.isFinite(createdAt) ? { createdAt } : {}),
          });
        }
        if (data.jobs.length < PER_PAGE) break;
      }
    }
    return jobs;
  }

  parseWebhook(headers: Headers, body: Uint8Array): WebhookResult {
    return parseGitHubWebhook(this.#webhookSecret, headers, body);
  }

  /**
   * One API call on the repository's installation. A 401 or 404 may mean
   * that the App was reinstalled (a new installation id) or its token
   * revoked: look the installation up again and try once more.
   */
  async #call<T>(
    repo: RepoRef,
    request: (octokit: InstallationOctokit) => Promise<T>,
  ): Promise<T> {
    try {
      return await request(await this.#installation(repo));
    } catch (error) {
      const status = statusOf(error);
      if (status !== 401 && status !== 404) throw forgeError(error);
    }
    this.#installations.delete(key(repo));
    try {
      return await request(await this.#installation(repo));
    } catch (error) {
      throw forgeError(error);
    }
  }

  #installation(repo: RepoRef): Promise<InstallationOctokit> {
    const k = key(repo);
    let found = this.#installations.get(k);
    if (found === undefined) {
      found = this.#app.octokit
        .request("GET /repos/{owner}/{repo}/installation", {
          owner: repo.owner,
          repo: repo.repo,
        })
        .then(({ data }) => this.#app.getInstallationOctokit(data.id));
      // A failed lookup is not cached: the next call tries again.
      found.catch(() => this.#installations.delete(k));
      this.#installations.set(k, found);
    }
    return found;
  }
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

function key(repo: RepoRef): string {
  return `${repo.owner}/${repo.repo}`.toLowerCase();
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
