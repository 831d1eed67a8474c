/**
 * What Forrest needs from a forge: GitHub at every scope (product.md §11),
 * Forgejo instances (§12). The core and the daemon only talk to these
 * interfaces. Runners belong to a scope: a repository, an organization or
 * an enterprise. GitHub tells of jobs by webhook and is polled per
 * repository; Forgejo 15 has no job webhooks and is polled per scope.
 */

import type { Scope } from "../config/mod.ts";
import type { JobReport, RunnerReport } from "../core/mod.ts";
import type { Secret } from "../log/mod.ts";

export interface RepoRef {
  readonly owner: string;
  readonly repo: string;
}

export interface RegisteredRunner {
  readonly id: number;
  readonly name: string;
  /**
   * What the guest's runner starts with, as setup template values
   * (`JITCONFIG` for GitHub; `FORGE_URL`, `RUNNER_UUID`, `RUNNER_TOKEN`,
   * `JOB_HANDLE`, `RUNNER_LABELS` and perhaps `PACKAGE_USER` and
   * `PACKAGE_TOKEN` for Forgejo); never logged.
   */
  readonly identity: Readonly<Record<string, Secret>>;
}

/** The one job attempt a runner is for, where the forge can say (Forgejo). */
export interface RunnerJob {
  readonly handle: string;
  /** The job's repository. */
  readonly repo: RepoRef;
  /** The job's labels (`runs-on`), as the forge spells them. */
  readonly labels?: readonly string[];
}

/** What a webhook delivery turned out to be. */
export type WebhookResult =
  /** No signature, or one that does not verify: 401. */
  | { readonly kind: "unauthorized"; readonly message: string }
  /** Signed, but not something we can read: 400. */
  | { readonly kind: "invalid"; readonly message: string }
  | { readonly kind: "ping" }
  /** Signed and readable, but of no interest (another event). */
  | { readonly kind: "ignored"; readonly event: string }
  | {
    readonly kind: "job";
    readonly delivery: string | undefined;
    readonly report: JobReport;
    /**
     * Set when the delivery contradicts itself (its action and the job's
     * status disagree), saying how: the job's status is to be asked of
     * the forge.
     */
    readonly disagreement?: string;
  };

/** What one configured scope needs from the forge before it can serve. */
export interface ScopeNeeds {
  readonly scope: Scope;
  /** Runner groups its machines use, by name. */
  readonly runnerGroups: readonly string[];
  /** Whether some of its machines use the default group (true if unsaid). */
  readonly defaultGroup?: boolean;
  /** An organization's listed repositories: each must be able to use the groups. */
  readonly repositories: readonly string[] | undefined;
  /** Each job gets a package token of the repository's CI user (Forgejo). */
  readonly packageToken?: boolean;
}

/** What every forge does: runners, for the core's decisions. */
export interface Forge {
  /**
   * Prepares API access for these scopes (GitHub: installations, runner
   * groups). Throws a ForgeSetupError for what the config must change,
   * a ForgeError for what may pass (the forge could not be reached).
   */
  connect(scopes: readonly ScopeNeeds[]): Promise<void>;
  /**
   * Registers a one-job runner (for `job` only, where the forge can say);
   * the guest runs it with its `identity`.
   */
  registerRunner(
    scope: Scope,
    name: string,
    labels: readonly string[],
    runnerGroup: string | undefined,
    job?: RunnerJob,
    /** The runner scale set to generate it in (GitHub, scale-set discovery). */
    scaleSet?: string,
  ): Promise<RegisteredRunner>;
  /**
   * Deletes a runner and what was made for it (a package token); one that
   * is gone already is not an error.
   */
  deleteRunner(scope: Scope, id: number): Promise<void>;
  listRunners(scope: Scope): Promise<RunnerReport[]>;
}

/** A forge that tells of jobs by webhook, polled per repository (GitHub). */
export interface WebhookForge extends Forge {
  /** The repositories of an organization whose jobs it may run. */
  listRepositories(org: string): Promise<RepoRef[]>;
  /** Queued and running jobs (and the finished jobs of their runs). */
  listActiveJobs(repo: RepoRef, since: Date): Promise<JobReport[]>;
  /**
   * The jobs of a repository's queued and running runs whose listing
   * changed since this was last asked, with conditional requests: an
   * unchanged listing costs a 304, which counts against no rate limit.
   * Jobs of unchanged listings are not reported again.
   */
  listJobChanges(repo: RepoRef): Promise<JobChanges>;
  /** One job as the forge has it now. */
  getJob(repo: RepoRef, id: number): Promise<JobReport>;
  /** Verifies a delivery's signature over its raw body, then reads it. */
  parseWebhook(
    headers: Headers,
    body: Uint8Array,
  ): Promise<WebhookResult> | WebhookResult;
}

/** What listJobChanges() found, and what it cost. */
export interface JobChanges {
  /** Every job of each run whose job listing changed. */
  readonly jobs: JobReport[];
  /** Requests made, 304s included. */
  readonly requests: number;
  /** Requests answered 304 Not Modified: free of the rate limit. */
  readonly notModified: number;
}

/** A forge whose waiting jobs are found by polling each scope (Forgejo). */
export interface PollingForge extends Forge {
  /** The config name of the instance, which its jobs' reports carry. */
  readonly name: string;
  /**
   * The waiting and running jobs of a repository or an organization,
   * every one of them (one listing per scope).
   */
  listJobs(scope: Scope): Promise<JobReport[]>;
}

/** Every configured forge: GitHub, and each `[forgejo.NAME]` by name. */
export interface Forges {
  readonly github: WebhookForge | undefined;
  readonly forgejo: ReadonlyMap<string, PollingForge>;
}

/** Whether the forge of a scope runs (a reload may name one that does not). */
export function hasForge(forges: Forges, scope: Scope): boolean {
  return lookup(forges, scope) !== undefined;
}

function lookup(forges: Forges, scope: Scope): Forge | undefined {
  const name = scope.kind === "enterprise" ? undefined : scope.forge;
  return name === undefined ? forges.github : forges.forgejo.get(name);
}

/**
 * The forge of a scope. Throws a ForgeError when it is not running: a
 * reload added a scope of a forge that needs a restart to start.
 */
export function forgeOfScope(forges: Forges, scope: Scope): Forge {
  const forge = lookup(forges, scope);
  if (forge === undefined) {
    const name = scope.kind === "enterprise" ? undefined : scope.forge;
    throw new ForgeError(
      name === undefined
        ? "GitHub is not connected: forrest serve started without a " +
          "[github] table; restart it to serve GitHub scopes"
        : `Forgejo "${name}" is not connected: restart forrest serve to ` +
          `serve the scopes of a new [forgejo.${name}] table`,
      undefined,
    );
  }
  return forge;
}

/** A forge call that failed, with what was asked, for the log. */
export class ForgeError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ForgeError";
  }
}

/**
 * A forge answer that the config must change to fix: a runner group that
 * does not exist, a repository that may not use it. `forrest serve` does
 * not start with one.
 */
export class ForgeSetupError extends ForgeError {
  constructor(message: string) {
    super(message, undefined);
    this.name = "ForgeSetupError";
  }
}
