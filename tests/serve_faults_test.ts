/**
 * GitHub failing under `forrest serve`: 5xx answers, a secondary rate
 * limit with Retry-After, a request that never answers, and an outage
 * longer than the retries. Requests are retried with backoff; no job is
 * lost: a failed registration is tried again, and the poller catches up
 * on jobs whose webhooks were lost during the outage.
 */

import assert from "node:assert/strict";
import { OWNER, REPO, type Serving, withServe } from "./serve.ts";

/** `later` has no image: its machines register and wait, no VM starts. */
const LATER = `
[repositories.${OWNER}.${REPO}.machines.later]
base_image = "images/not-built-yet.img"
ram = "1G"
`;
const LATER_LABELS = ["self-hosted", "forrest", "later"];

function jitconfigStatuses(s: Serving): number[] {
  return s.double.requests
    .filter((r) => r.path.endsWith("/generate-jitconfig"))
    .map((r) => r.status);
}

async function queueAndRegister(s: Serving, what: string): Promise<number> {
  const before = s.double.runners(OWNER, REPO).length;
  const job = await s.double.queueJob({
    owner: OWNER,
    repo: REPO,
    labels: LATER_LABELS,
  });
  await s.double.waitFor(
    () => s.double.runners(OWNER, REPO).length === before + 1,
    60_000,
    `a runner registered despite ${what}`,
  );
  return job.id;
}

Deno.test("serve: GitHub's 5xx, rate limits and timeouts are retried; no job is lost", async () => {
  await withServe({
    image: "/nonexistent/debian.img",
    extraToml: LATER,
    janitorInterval: "10m",
    requestTimeout: "1s",
  }, async (s) => {
    const jobs: number[] = [];

    s.double.failNext(2, { status: 502, body: { message: "Bad Gateway" } });
    jobs.push(await queueAndRegister(s, "two 502 answers"));
    assert.deepEqual(jitconfigStatuses(s), [502, 502, 201]);

    s.double.failNext(1, {
      status: 403,
      headers: { "retry-after": "1" },
      body: {
        message:
          "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
      },
    });
    jobs.push(await queueAndRegister(s, "a secondary rate limit"));
    await s.waitForLog("secondary rate limit");
    assert.deepEqual(jitconfigStatuses(s).slice(3), [403, 201]);

    // Answers after 3 s, when Forrest has given up on it after 1 s.
    s.double.failNext(1, { status: 201, delayMs: 3_000, body: {} });
    const started = Date.now();
    jobs.push(await queueAndRegister(s, "a request that timed out"));
    assert.ok(Date.now() - started < 20_000);

    // More failures than retries: registration fails, and is tried again.
    s.double.failNext(4, { status: 500, body: { message: "Server Error" } });
    jobs.push(await queueAndRegister(s, "an outage longer than the retries"));
    await s.waitForLog("Cannot register runner");

    assert.equal((await s.status()).machines.length, 4);
    for (const id of jobs) await s.double.cancelJob(id);
    await s.waitForStatus((st) => st.machines.length === 0, 30_000, "killed");
  });
});

Deno.test("serve: after a GitHub outage, the poller finds jobs whose webhooks were lost", async () => {
  await withServe({
    image: "/nonexistent/debian.img",
    extraToml: LATER,
    janitorInterval: "10m",
    pollingInterval: "5s",
  }, async (s) => {
    // GitHub is down: the next poll fails even with its retries, and the
    // job's webhook never arrives.
    s.double.failNext(4, { status: 503, body: { message: "Unavailable" } });
    const job = await s.double.queueJob({
      owner: OWNER,
      repo: REPO,
      labels: LATER_LABELS,
      webhook: false,
    });
    await s.waitForLog("Cannot poll jobs", 60_000);
    await s.waitForLog('"found" by the poller', 60_000);
    await s.double.waitFor(
      () => s.double.runners(OWNER, REPO).length === 1,
      30_000,
      "a runner for the job found after the outage",
    );
    await s.double.cancelJob(job.id);
    await s.waitForStatus((st) => st.machines.length === 0, 30_000, "killed");
  });
});

Deno.test("serve: a reinstalled App is looked up again (401 on the old token)", async () => {
  await withServe({
    image: "/nonexistent/debian.img",
    extraToml: LATER,
    janitorInterval: "10m",
  }, async (s) => {
    const lookups = () =>
      s.double.requests.filter((r) => r.path.endsWith("/installation")).length;
    const before = lookups();
    s.double.reinstall(OWNER);
    const id = await queueAndRegister(s, "a reinstalled App");
    assert.ok(lookups() > before, "the installation was looked up again");
    // octokit retries a 401 itself while the token is under 5 s old (as
    // it is when a job comes at once): one or more 401s, then the new
    // installation's token.
    const statuses = jitconfigStatuses(s);
    assert.equal(statuses.at(-1), 201);
    assert.ok(statuses.length >= 2, statuses.join(", "));
    assert.ok(statuses.slice(0, -1).every((status) => status === 401));
    await s.double.cancelJob(id);
    await s.waitForStatus((st) => st.machines.length === 0, 30_000, "killed");
  });
});
