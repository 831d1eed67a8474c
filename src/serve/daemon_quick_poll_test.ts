/**
 * The quick poll and the check of self-contradicting deliveries, in the
 * test's process against the GitHub double over HTTP: lost webhooks'
 * jobs are found with conditional requests, unchanged listings cost 304s
 * only, and a delivery whose action and status disagree is checked
 * against the API after it was answered, once per job.
 */

import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { withDaemon } from "../../tests/daemon.ts";
import {
  generateAppKey,
  GitHubDouble,
  type RecordedRequest,
  signBody,
  workflowJobPayload,
} from "../../tests/github/mod.ts";
import type { Daemon } from "./daemon.ts";

const SECRET = "hush";
const KEY = await generateAppKey();
const LABELS = ["self-hosted", "forrest", "build"];
const SCOPES = '[repositories.acme.app.machines.build]\nbase_image = "x.img"\n';

/** A double with acme/app, a daemon on it, and the log records made. */
async function withQuickPoll(
  body: (
    double: GitHubDouble,
    daemon: Daemon,
    records: LogRecord[],
  ) => Promise<void>,
): Promise<void> {
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [
      { category: ["forrest"], lowestLevel: "info", sinks: ["memory"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  try {
    await using double = await GitHubDouble.start({
      appId: 1,
      privateKeyPem: KEY,
      webhookSecret: SECRET,
    });
    double.addRepo("acme", "app");
    await withDaemon({
      scopesToml: SCOPES,
      apiUrl: double.url,
      appKey: KEY,
      webhookSecret: SECRET,
    }, (daemon) => body(double, daemon, records));
  } finally {
    await reset();
  }
}

// plugin-throttling starts its rate-limit groups, with cleanup intervals
// that live as long as the process, on the process's first request: make
// it on import, outside any test, so the sanitizers see only the tests'.
await withQuickPoll(async (_double, daemon) => {
  await daemon.pollQueued();
});

const listings = (r: RecordedRequest) => r.path.includes("/actions/runs");
const text = (records: LogRecord[]) =>
  records.map((r) => r.message.map(String).join(""));
const jobIds = (daemon: Daemon) => daemon.status().jobs.map((j) => j.id);

Deno.test("Daemon.pollQueued() finds a lost webhook's job, then costs only 304s while nothing changes", async () => {
  await withQuickPoll(async (double, daemon, records) => {
    // The first round reads every listing (and keeps its ETag).
    const first = await daemon.pollQueued();
    assert.deepEqual(first, { requests: 2, notModified: 0 });
    const job = await double.queueJob({
      owner: "acme",
      repo: "app",
      labels: LABELS,
      webhook: false,
    });
    const from = double.requests.length;
    const found = await daemon.pollQueued();
    // Queued runs changed (200), in-progress ones did not (304); the new
    // run's jobs were listed (200).
    assert.deepEqual(found, { requests: 3, notModified: 1 });
    assert.deepEqual(jobIds(daemon), [job.id]);
    assert.ok(
      text(records).includes(
        `Job ${job.id} of acme/app: queued, found by the poller`,
      ),
      text(records).join("\n"),
    );
    assert.ok(
      double.requests.slice(from).filter(listings).every((r) =>
        r.query.created === undefined
      ),
      "listings keep their URL (no created filter)",
    );

    const idle = double.requests.length;
    assert.deepEqual(await daemon.pollQueued(), {
      requests: 3,
      notModified: 3,
    });
    assert.deepEqual(double.requestCost(idle, listings), {
      requests: 3,
      counted: 0,
      notModified: 3,
    });
    assert.deepEqual(jobIds(daemon), [job.id]);
    // Cancelled, its webhook lost too: the run left the listing, and its
    // jobs are listed once more to say how they ended.
    await double.cancelJob(job.id);
    assert.deepEqual(await daemon.pollQueued(), {
      requests: 3,
      notModified: 1,
    });
    assert.deepEqual(jobIds(daemon), []);
    assert.ok(
      text(records).includes(
        `Job ${job.id} of acme/app: gone, dropped by the poller`,
      ),
    );
    assert.deepEqual(await daemon.pollQueued(), {
      requests: 2,
      notModified: 2,
    });
  });
});

Deno.test("Daemon.pollQueued() finds a job queued inside a run in progress", async () => {
  await withQuickPoll(async (double, daemon) => {
    const first = await double.queueJob({
      owner: "acme",
      repo: "app",
      labels: ["ubuntu-latest"],
      webhook: false,
    });
    await double.startJobElsewhere(first.id, { webhook: false });
    await daemon.pollQueued();
    assert.deepEqual(jobIds(daemon), []);
    // `needs: first`: the run stays in progress, its next job is queued.
    const next = await double.queueJob({
      owner: "acme",
      repo: "app",
      labels: LABELS,
      runId: first.runId,
      webhook: false,
    });
    await daemon.pollQueued();
    assert.deepEqual(jobIds(daemon), [next.id]);
    await double.cancelJob(next.id);
    await double.finishJobElsewhere(first.id, { webhook: false });
  });
});

Deno.test("Daemon.pollQueued() drops no job that its listings did not cover", async () => {
  await withQuickPoll(async (double, daemon) => {
    // Known by a delivery only (GitHub's listing lost it, or not yet).
    const answer = await daemon.webhook(...delivery(double, 999, "queued"));
    assert.equal(answer.status, 202);
    await daemon.pollQueued();
    await daemon.pollQueued();
    assert.deepEqual(jobIds(daemon), [999]);
  });
});

/** A signed `workflow_job` delivery of acme/app's job `id`. */
function delivery(
  double: GitHubDouble,
  id: number,
  status: "queued" | "waiting",
): [Headers, Uint8Array] {
  const body = new TextEncoder().encode(JSON.stringify(workflowJobPayload(
    "queued",
    {
      id,
      run_id: double.job(id)?.runId ?? 77,
      status,
      labels: LABELS,
      runner_id: null,
      runner_name: null,
    },
    {
      id: 1,
      owner: "acme",
      ownerId: 2,
      name: "app",
      installationId: 3,
    },
  )));
  const headers = new Headers({
    "x-github-event": "workflow_job",
    "x-github-delivery": crypto.randomUUID(),
    "x-hub-signature-256": signBody(SECRET, body),
  });
  return [headers, body];
}

Deno.test("Daemon.webhook() checks a delivery whose action and status disagree, after answering, once per job", async () => {
  await withQuickPoll(async (double, daemon, records) => {
    // GitHub's recorded `queued` delivery of a job `waiting` for approval;
    // by now the job was approved and is queued.
    const job = await double.queueJob({
      owner: "acme",
      repo: "app",
      labels: LABELS,
      webhook: false,
    });
    const from = double.requests.length;
    const checks = () =>
      double.requests.slice(from).filter((r) =>
        r.path === `/repos/acme/app/actions/jobs/${job.id}`
      ).length;
    const first = await daemon.webhook(...delivery(double, job.id, "waiting"));
    assert.equal(first.status, 202);
    // Answered before the check: the job is waiting as the delivery said.
    assert.equal(daemon.status().jobs[0]?.status, "waiting");
    assert.equal(checks(), 0);
    // Another such delivery while the check runs asks nothing more.
    await daemon.webhook(...delivery(double, job.id, "waiting"));
    await double.waitFor(
      () => daemon.status().jobs[0]?.status === "queued",
      10_000,
      "the job queued as the API says",
    );
    assert.equal(checks(), 1);
    assert.ok(
      text(records).includes(
        `Job ${job.id} of acme/app: its delivery said action "queued" ` +
          `with status "waiting"; GitHub says queued (updated)`,
      ),
      text(records).join("\n"),
    );

    // A delivery that agrees with itself is not checked.
    await daemon.webhook(...delivery(double, job.id, "queued"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(checks(), 1);

    // A failed check is logged, without the token it was made with.
    double.failNext(1, { status: 502, body: { message: "Bad Gateway" } });
    await daemon.webhook(...delivery(double, job.id, "waiting"));
    await double.waitFor(
      () => text(records).some((line) => line.startsWith("Cannot check job")),
      10_000,
      "the failed check logged",
    );
    const logged = text(records).join("\n");
    for (const secret of double.issuedSecrets) {
      assert.ok(!logged.includes(secret), "a token was logged");
    }
    await double.cancelJob(job.id);
  });
});
