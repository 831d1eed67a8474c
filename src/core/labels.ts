/**
 * Which machine type a job belongs to (product.md §4). GitHub compares
 * labels case-insensitively, and so do we; so are owner and repository
 * names, which GitHub treats as case-insensitive too.
 */

import type { Config, MachineConfig, Triplet } from "../config/mod.ts";

/** The labels a machine's runners register with, in this order. */
export function runnerLabels(machine: MachineConfig): string[] {
  const labels = ["self-hosted", "forrest", machine.triplet.machine];
  for (const label of machine.labels) {
    if (!labels.some((l) => sameName(l, label))) labels.push(label);
  }
  return labels;
}

/**
 * The machine of `owner/repo` whose runners can take a job with these
 * labels: every job label is among the machine's runner labels, and the
 * machine's own name is one of them. Undefined for a repository that is not
 * configured or a job no machine fits.
 */
export function machineForJob(
  config: Config,
  owner: string,
  repo: string,
  labels: readonly string[],
): MachineConfig | undefined {
  const repository = config.repositories.find((r) =>
    sameName(r.owner, owner) && sameName(r.repo, repo)
  );
  if (repository === undefined) return undefined;
  return repository.machines.find((machine) => {
    const offered = runnerLabels(machine);
    return labels.some((l) => sameName(l, machine.triplet.machine)) &&
      labels.every((l) => offered.some((o) => sameName(o, l)));
  });
}

/** Whether `owner/repo` is in the config. */
export function isConfiguredRepository(
  config: Config,
  owner: string,
  repo: string,
): boolean {
  return config.repositories.some((r) =>
    sameName(r.owner, owner) && sameName(r.repo, repo)
  );
}

export function sameName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** A triplet as one string that compares case-insensitively. */
export function tripletKey(triplet: Triplet): string {
  return `${triplet.owner}/${triplet.repo}/${triplet.machine}`.toLowerCase();
}
