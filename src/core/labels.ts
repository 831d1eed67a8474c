/**
 * Which machine type a job belongs to (product.md §4, §11). GitHub compares
 * labels case-insensitively, and so do we; so are owner and repository
 * names, which GitHub treats as case-insensitive too. A job may be served
 * by its repository, its organization and its enterprise: it goes to the
 * most specific of them that has a machine for it.
 */

import {
  type Config,
  forgeOf,
  GITHUB_DEFAULT_LABELS,
  type MachineConfig,
  type ScopeConfig,
  type Triplet,
  tripletName,
} from "../config/mod.ts";

/** Where a job comes from, as far as choosing its machine goes. */
export interface JobOrigin {
  /** The `[forgejo.NAME]` it comes from; GitHub when undefined. */
  readonly forge?: string;
  readonly owner: string;
  readonly repo: string;
  /** The enterprise slug, when the delivery named one. */
  readonly enterprise?: string;
}

/** The labels a machine's runners register with, in this order. */
export function runnerLabels(machine: MachineConfig): string[] {
  const labels = ["self-hosted", "forrest", machine.triplet.machine];
  const extra = [
    ...(machine.defaultLabels ? GITHUB_DEFAULT_LABELS : []),
    ...machine.labels,
  ];
  for (const label of extra) {
    if (!labels.some((l) => sameName(l, label))) labels.push(label);
  }
  return labels;
}

/**
 * Whether this machine's runners can take a job with these labels: every
 * job label is among the runner's labels, and the job names the machine
 * (or the machine carries GitHub's default labels, and so takes the jobs
 * written for `runs-on: [self-hosted, linux]`).
 */
function takesJob(
  machine: MachineConfig,
  labels: readonly string[],
): boolean {
  const offered = runnerLabels(machine);
  return labels.every((l) => offered.some((o) => sameName(o, l))) &&
    (machine.defaultLabels ||
      labels.some((l) => sameName(l, machine.triplet.machine)));
}

/** The configured scopes that serve jobs of this origin, most specific first. */
function scopesFor(config: Config, job: JobOrigin): ScopeConfig[] {
  // config.scopes lists repositories, then organizations, then enterprises.
  return config.scopes.filter((entry) => serves(entry, job));
}

function serves(entry: ScopeConfig, job: JobOrigin): boolean {
  const { scope } = entry;
  if (forgeOf(scope) !== job.forge) return false;
  switch (scope.kind) {
    case "repository":
      return sameName(scope.owner, job.owner) && sameName(scope.repo, job.repo);
    case "organization":
      return sameName(scope.org, job.owner) &&
        (entry.repositories === undefined ||
          entry.repositories.includes(job.repo.toLowerCase()));
    case "enterprise":
      return job.enterprise !== undefined &&
        sameName(scope.enterprise, job.enterprise);
  }
}

/**
 * The machine whose runners can take a job of this origin with these
 * labels, from the most specific scope that has one. Undefined for a job
 * no configured scope serves, or one no machine fits.
 */
export function machineForJob(
  config: Config,
  job: JobOrigin,
  labels: readonly string[],
): MachineConfig | undefined {
  for (const entry of scopesFor(config, job)) {
    const machine = entry.machines.find((m) => takesJob(m, labels));
    if (machine) return machine;
  }
  return undefined;
}

/** Whether any configured scope serves jobs of this origin. */
export function isServed(config: Config, job: JobOrigin): boolean {
  return scopesFor(config, job).length > 0;
}

export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** A machine key as one string that compares case-insensitively. */
export function tripletKey(triplet: Triplet): string {
  return tripletName(triplet).toLowerCase();
}
