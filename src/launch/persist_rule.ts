/**
 * When a run's disk becomes its machine's image: the job wrote the
 * repository's persistence token to `config/persist` (or, for `exec
 * --persist`, the command succeeded).
 */

import { getLogger } from "@logtape/logtape";
import type { JobResult } from "../guest/mod.ts";
import { type Fork, persistFork, tokenMatches } from "../images/mod.ts";
import type { Secret } from "../log/mod.ts";

export interface PersistRule {
  /** The machine image the run's disk replaces. */
  readonly target: string;
  /** The repository's token, which the job must write to config/persist. */
  readonly token: Secret | undefined;
  /** Persist whenever the command exits 0, token or not (exec --persist). */
  readonly onSuccess: boolean;
}

/**
 * Persists the run's disk when the rule says so. A `persist` file that does
 * not hold the token is logged (never the token itself) and ignored.
 */
export async function persistIfWanted(
  fork: Fork,
  rule: PersistRule,
  result: JobResult,
  runner: string,
): Promise<boolean> {
  const log = getLogger(["forrest", "persist"]);
  const tokenOk = await tokenMatches(result.persist, rule.token);
  if (result.persist !== undefined && !tokenOk) {
    log.warn(
      "Run {runner} wrote a persist file that does not hold the repository's " +
        "persistence token; its disk is not kept",
      { runner },
    );
  }
  if (!tokenOk && !(rule.onSuccess && result.exitCode === 0)) return false;
  await persistFork(fork, rule.target);
  log.info("Run {runner} persisted its disk as {image}", {
    runner,
    image: rule.target,
  });
  return true;
}
