/**
 * What one poll round of an organization costs in API requests (product.md
 * §11, docs/jobs.md): one page of the organization's repositories per 100,
 * two listings of runs per repository (queued, in progress), and one
 * listing of jobs per active run. The quick poll makes the same listings
 * (without the organization's, which the full poll keeps) with
 * If-None-Match: unchanged, they are all 304s, which cost no rate limit.
 */

import assert from "node:assert/strict";
import { pollRound, quickPollRounds } from "./poll_round.ts";

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

Deno.test("poll: a quick round over 12 repositories, 3 active, costs 2×12 + 3 requests, none counted while unchanged", async () => {
  const { first, unchanged } = await quickPollRounds(12, 3);
  assert.deepEqual(first, { requests: 2 * 12 + 3, counted: 2 * 12 + 3 });
  assert.deepEqual(unchanged, { requests: 2 * 12 + 3, counted: 0 });
});
