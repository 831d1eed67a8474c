/**
 * What Forrest needs from a forge (GitHub now, at every scope; Forgejo
 * later, product.md §7). The core and the daemon only talk to this
 * interface, so another forge slots in without touching them. Runners
 * belong to a scope: a repository, an organization or an enterprise.
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
  /** What the guest's runner starts with; never logged. */
  readonly jitConfig: Secret;
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
  };

/** What one configured scope needs from the forge before it can serve. */
export interface ScopeNeeds {
  readonly scope: Scope;
  /** Runner groups its machines use, by name. */
  readonly runnerGroups: readonly string[];
  /** An organization's listed repositories: each must be able to use the groups. */
  readonly repositories: readonly string[] | undefined;
}

export interface Forge {
  /**
   * Prepares API access for these scopes (GitHub: installations, runner
   * groups). Throws a ForgeSetupError for what the config must change,
   * a ForgeError for what may pass (the forge could not be reached).
   */
  connect(scopes: readonly ScopeNeeds[]): Promise<void>;
  /** Registers a one-job runner; the guest runs it with `jitConfig`. */
  registerRunner(
    scope: Scope,
    name: string,
    labels: readonly string[],
    runnerGroup: string | undefined,
  ): Promise<RegisteredRunner>;
  /** Deletes a runner; one that is gone already is not an error. */
  deleteRunner(scope: Scope, id: number): Promise<void>;
  listRunners(scope: Scope): Promise<RunnerReport[]>;
  /** The repositories of an organization whose jobs it may run. */
  listRepositories(org: string): Promise<RepoRef[]>;
  /** Queued and running jobs (and the finished jobs of their runs). */
  listActiveJobs(repo: RepoRef, since: Date): Promise<JobReport[]>;
  /** Verifies a delivery's signature over its raw body, then reads it. */
  parseWebhook(
    headers: Headers,
    body: Uint8Array,
  ): Promise<WebhookResult> | WebhookResult;
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
