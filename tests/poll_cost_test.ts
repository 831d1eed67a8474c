/**
 * What one poll round of an organization costs in API requests (product.md
 * §11, docs/jobs.md): one page of the organization's repositories per 100,
 * two listings of runs per repository (queued, in progress), and one
 * listing of jobs per active run.
 */

import assert from "node:assert/strict";
import { pollRound } from "./poll_round.ts";

Deno.test("poll: a round over an organization of 12 repositories, 3 active, costs 1 + 2×12 + 3 requests", async () => {
  const round = await pollRound(12, 3);
  assert.deepEqual(round.byPath, {
    "GET /orgs/acme/repos": 1,
    "GET /repos/acme/{repo}/actions/runs?status=queued": 12,
    "GET /repos/acme/{repo}/actions/runs?status=in_progress": 12,
    "GET /repos/acme/{repo}/actions/runs/{run_id}/jobs": 3,
  });
  assert.equal(round.requests, 1 + 2 * 12 + 3);
});
