/**
 * What Forrest needs from a forge (GitHub now; Forgejo, Gitea, GitHub
 * organizations later, product.md §7). The core and the daemon only talk
 * to this interface, so another forge slots in without touching them.
 */

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

export interface Forge {
  /** Prepares API access for these repositories (GitHub: installations). */
  connect(repos: readonly RepoRef[]): Promise<void>;
  /** Registers a one-job runner; the guest runs it with `jitConfig`. */
  registerRunner(
    repo: RepoRef,
    name: string,
    labels: readonly string[],
  ): Promise<RegisteredRunner>;
  /** Deletes a runner; one that is gone already is not an error. */
  deleteRunner(repo: RepoRef, id: number): Promise<void>;
  listRunners(repo: RepoRef): Promise<RunnerReport[]>;
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
