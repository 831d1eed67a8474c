/**
 * Lost webhooks under `forrest serve`, against the GitHub double over
 * HTTP: a queued job whose webhook never came is found by the quick poll
 * within its interval, its unchanged listings then cost 304s only, and a
 * delivery whose action and status disagree is checked against the API
 * at once. No VM starts: the machine's image does not exist, so its
 * machines register a runner and wait.
 */

import assert from "node:assert/strict";
import { type RecordedRequest, workflowJobPayload } from "./github/mod.ts";
import { LABELS, OWNER, REPO, type Serving, withServe } from "./serve.ts";

const IMAGE = "/nonexistent/debian.img";

/** The quick poll's listings: without the full poll's `created` filter. */
function quickListing(r: RecordedRequest): boolean {
  return r.path.includes("/actions/runs") && r.query.created === undefined;
}

function quickRounds(s: Serving, from = 0): number {
  return s.double.requests.slice(from).filter((r) =>
    quickListing(r) && r.query.status === "queued"
  ).length;
}

async function cancelAndSettle(s: Serving, id: number): Promise<void> {
  await s.double.cancelJob(id);
  await s.waitForStatus((st) => st.machines.length === 0, 30_000, "killed");
}

Deno.test("serve: the quick poll finds a job whose webhook was lost within its interval, then costs 304s only", async () => {
  await withServe({
    image: IMAGE,
    queuedPollingInterval: "2s",
    janitorInterval: "10m",
  }, async (s) => {
    // The first round reads every listing and keeps its ETag; the job is
    // queued between two rounds (of two listings while there is no run).
    await s.double.waitFor(
      () =>
        s.double.requests.filter(quickListing).at(-1)?.query.status ===
          "in_progress",
      30_000,
      "a quick poll",
    );
    const atQueue = s.double.requests.length;
    const job = await s.double.queueJob({
      owner: OWNER,
      repo: REPO,
      labels: LABELS,
      webhook: false,
    });
    const queuedAt = Date.now();
    await s.waitForStatus(
      (st) => st.jobs.some((j) => j.id === job.id),
      30_000,
      "the job found",
    );
    const took = Date.now() - queuedAt;
    assert.ok(took < 10_000, `found after ${took} ms`);
    // By the first round after the job was queued: its queued runs
    // changed, and the new run's jobs were listed.
    const round = s.double.requests.slice(atQueue).filter(quickListing)
      .slice(0, 3).map((r) => [r.path, r.query.status, r.status]);
    const runs = `/repos/${OWNER}/${REPO}/actions/runs`;
    assert.deepEqual(round, [
      [runs, "queued", 200],
      [runs, "in_progress", 304],
      [`${runs}/${job.runId}/jobs`, undefined, 200],
    ]);
    await s.waitForLog(
      `${job.id} of "${OWNER}"/"${REPO}": "queued", "found" by the poller`,
    );
    assert.equal(s.double.deliveries.length, 0, "no webhook was sent");

    // Nothing changes now: two more whole rounds (of three listings:
    // queued runs, running runs, the job's run), every listing a 304.
    const from = s.double.requests.length;
    await s.double.waitFor(
      () => quickRounds(s, from) >= 3,
      30_000,
      "three more quick polls",
    );
    const cost = s.double.requestCost(from, quickListing);
    assert.ok(cost.requests >= 6, `${cost.requests} requests`);
    assert.deepEqual(cost, {
      requests: cost.requests,
      counted: 0,
      notModified: cost.requests,
    });
    await cancelAndSettle(s, job.id);
  });
});

Deno.test("serve: a delivery whose action and status disagree is checked against the API at once", async () => {
  await withServe({ image: IMAGE, janitorInterval: "10m" }, async (s) => {
    // Approved already: the job is queued, but the delivery (as GitHub
    // recorded one) says `queued` with status `waiting`.
    const job = await s.double.queueJob({
      owner: OWNER,
      repo: REPO,
      labels: LABELS,
      webhook: false,
    });
    const answer = await s.double.sendWebhook(
      "workflow_job",
      workflowJobPayload("queued", {
        id: job.id,
        run_id: job.runId,
        status: "waiting",
        labels: LABELS,
        runner_id: null,
        runner_name: null,
      }, {
        id: 1,
        owner: OWNER,
        ownerId: 2,
        name: REPO,
        installationId: 3,
      }),
    );
    assert.equal(answer.status, 202);
    await s.waitForStatus(
      (st) => st.jobs.some((j) => j.id === job.id && j.status === "queued"),
      10_000,
      "the job queued, as the API says",
    );
    await s.waitForLog('GitHub says "queued" ("updated")');
    assert.equal(
      s.double.requests.filter((r) =>
        r.path === `/repos/${OWNER}/${REPO}/actions/jobs/${job.id}`
      ).length,
      1,
    );
    await cancelAndSettle(s, job.id);
  });
});
