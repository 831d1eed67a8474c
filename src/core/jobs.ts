/**
 * The jobs Forrest knows of, from webhooks (hints, fast) and the poller (the
 * truth, slow). Only jobs that one of our machine types can take are kept;
 * a completed job is dropped. A GitHub job is known by its id; a Forgejo
 * job by its instance and handle, which is new for every attempt (a re-run
 * keeps the id), and which its runner is told to take.
 */

import type { Triplet } from "../config/mod.ts";

/** What a forge reports about a job, from a webhook or a poll. */
export interface JobReport {
  readonly id: number;
  /** The `[forgejo.NAME]` it comes from; GitHub when undefined. */
  readonly forge?: string;
  /** Forgejo: the attempt's handle, which its runner is told to take. */
  readonly handle?: string;
  readonly owner: string;
  readonly repo: string;
  readonly status: ForgeJobStatus;
  readonly labels: readonly string[];
  /** The runner that took the job; null while queued. */
  readonly runnerName: string | null;
  /** When GitHub queued it, milliseconds since the epoch, if known. */
  readonly createdAt?: number;
  /**
   * The enterprise the repository belongs to, when the delivery says so
   * (webhooks of enterprise hooks, and of organizations in an enterprise).
   */
  readonly enterprise?: string;
}

/** Job statuses Forrest tracks; "completed" drops a job. */
export const TRACKED_JOB_STATUSES = [
  "queued",
  "waiting",
  "pending",
  "requested",
  "in_progress",
] as const;

export type ForgeJobStatus =
  | (typeof TRACKED_JOB_STATUSES)[number]
  | "completed";

export interface TrackedJob {
  /** What the tracker knows it by: see jobKey(). */
  readonly key: string;
  readonly id: number;
  readonly forge?: string;
  readonly handle?: string;
  readonly owner: string;
  readonly repo: string;
  readonly labels: readonly string[];
  /** Kept from the first report that named it (polls do not). */
  readonly enterprise?: string;
  readonly triplet: Triplet;
  readonly status: Exclude<ForgeJobStatus, "completed">;
  readonly runnerName: string | null;
  /** When this job's status last changed here. */
  readonly since: number;
  /** When we last heard of it (webhook or poll). */
  readonly updatedAt: number;
  /** When GitHub queued it (or when we first saw it queued). */
  readonly queuedAt: number;
}

/** What a report changed, for the caller's bookkeeping and metrics. */
export type JobChange =
  | { readonly kind: "none" }
  | {
    readonly kind: "added" | "updated" | "dropped";
    readonly job: TrackedJob;
  };

/** Which jobs a poll listed: one repository's, or (repo undefined) an owner's. */
export interface JobListing {
  readonly forge?: string;
  readonly owner: string;
  readonly repo?: string;
}

/**
 * A job's key: its GitHub id, or a Forgejo attempt's instance and handle
 * (ids of different forges may be equal; a re-run is a new attempt).
 */
export function jobKey(job: Pick<JobReport, "id" | "forge" | "handle">) {
  return job.forge === undefined
    ? String(job.id)
    : `${job.forge}:${job.handle ?? job.id}`;
}

export class JobTracker {
  readonly #jobs = new Map<string, TrackedJob>();

  /** A report with what earlier reports of the same job said and it does not. */
  withEarlier(report: JobReport): JobReport {
    const enterprise = this.#jobs.get(jobKey(report))?.enterprise;
    return report.enterprise === undefined && enterprise !== undefined
      ? { ...report, enterprise }
      : report;
  }

  /** Applies one report; `triplet` is where the job belongs, if anywhere. */
  report(
    report: JobReport,
    triplet: Triplet | undefined,
    now: number,
  ): JobChange {
    const key = jobKey(report);
    const old = this.#jobs.get(key);
    const enterprise = report.enterprise ?? old?.enterprise;
    // Deliveries come out of order: a job that runs does not go back to
    // waiting in line (a re-run is a new job id).
    if (
      old?.status === "in_progress" && report.status !== "completed" &&
      report.status !== "in_progress"
    ) {
      return { kind: "none" };
    }
    if (report.status === "completed" || triplet === undefined) {
      if (old === undefined) return { kind: "none" };
      this.#jobs.delete(key);
      return { kind: "dropped", job: old };
    }
    const job: TrackedJob = {
      key,
      id: report.id,
      ...(report.forge === undefined ? {} : { forge: report.forge }),
      ...(report.handle === undefined ? {} : { handle: report.handle }),
      owner: report.owner,
      repo: report.repo,
      labels: report.labels,
      ...(enterprise === undefined ? {} : { enterprise }),
      triplet,
      status: report.status,
      runnerName: report.runnerName,
      since: old?.status === report.status ? old.since : now,
      updatedAt: now,
      queuedAt: old?.queuedAt ?? report.createdAt ?? now,
    };
    this.#jobs.set(key, job);
    if (old === undefined) return { kind: "added", job };
    const same = old.status === job.status &&
      old.runnerName === job.runnerName;
    return same ? { kind: "none" } : { kind: "updated", job };
  }

  /**
   * Drops the jobs of a listing that a poll started at `pollStartedAt` did
   * not list (by key) and that no webhook mentioned since: they completed
   * or vanished while we were not looking.
   */
  forgetUnlisted(
    listing: JobListing,
    listed: ReadonlySet<string>,
    pollStartedAt: number,
  ): TrackedJob[] {
    const dropped: TrackedJob[] = [];
    const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
    for (const job of this.#jobs.values()) {
      const listedHere = job.forge === listing.forge &&
        same(job.owner, listing.owner) &&
        (listing.repo === undefined || same(job.repo, listing.repo));
      if (
        listedHere && !listed.has(job.key) && job.updatedAt < pollStartedAt
      ) {
        this.#jobs.delete(job.key);
        dropped.push(job);
      }
    }
    return dropped;
  }

  /**
   * Maps every job to its machine again (after a config reload); jobs that
   * no machine takes any more are dropped.
   */
  remap(triplet: (job: TrackedJob) => Triplet | undefined): void {
    for (const job of [...this.#jobs.values()]) {
      const now = triplet(job);
      if (now === undefined) this.#jobs.delete(job.key);
      else this.#jobs.set(job.key, { ...job, triplet: now });
    }
  }

  get(key: string): TrackedJob | undefined {
    return this.#jobs.get(key);
  }

  all(): TrackedJob[] {
    return [...this.#jobs.values()];
  }

  /** Queued jobs, in the order they were first seen. */
  queued(): TrackedJob[] {
    return [...this.#jobs.values()].filter((job) => job.status === "queued");
  }

  /** Queued jobs per triplet key. */
  queuedBy(key: (triplet: Triplet) => string): Map<string, number> {
    const counts = new Map<string, number>();
    for (const job of this.#jobs.values()) {
      if (job.status !== "queued") continue;
      const k = key(job.triplet);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return counts;
  }
}
