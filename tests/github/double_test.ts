import assert from "node:assert/strict";
import { App } from "@octokit/app";
import { Octokit } from "@octokit/core";
import { GitHubDouble } from "./double.ts";
import { generateAppKey, signAppJwt } from "./jwt.ts";

const APP_ID = 4242;
const KEY = await generateAppKey();

function start(): Promise<GitHubDouble> {
  return GitHubDouble.start({
    appId: APP_ID,
    privateKeyPem: KEY,
    webhookSecret: "hush",
  });
}

function appFor(gh: GitHubDouble): App {
  return new App({
    appId: APP_ID,
    privateKey: KEY,
    Octokit: Octokit.defaults({ baseUrl: gh.url }),
  });
}

/** A JWT as @octokit/app makes it, or with `claims` changed. */
function jwt(claims: Record<string, unknown> = {}, key = KEY): string {
  const now = Math.floor(Date.now() / 1000);
  return signAppJwt(key, {
    iat: now - 30,
    exp: now + 570,
    iss: APP_ID,
    ...claims,
  });
}

/** Raw fetch, body read, so that tests see exactly what the double sends. */
async function call(
  gh: GitHubDouble,
  method: string,
  path: string,
  authorization?: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
  const response = await fetch(`${gh.url}${path}`, {
    method,
    headers: authorization ? { authorization } : {},
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : undefined };
}

async function tokenFor(gh: GitHubDouble, installationId: number) {
  const answer = await call(
    gh,
    "POST",
    `/app/installations/${installationId}/access_tokens`,
    `Bearer ${jwt()}`,
  );
  assert.equal(answer.status, 201);
  return `token ${answer.json!.token}`;
}

Deno.test("generateAppKey makes a PKCS#1 RSA key, as GitHub hands out", () => {
  assert.match(KEY, /^-----BEGIN RSA PRIVATE KEY-----\n/);
});

Deno.test("an app finds its installation, gets a token and manages runners", async () => {
  await using gh = await start();
  const { installationId } = gh.addRepo("octo", "forrest");
  assert.deepEqual(gh.addRepo("octo", "other"), { installationId });
  const app = appFor(gh);

  const { data: installation } = await app.octokit.request(
    "GET /repos/{owner}/{repo}/installation",
    { owner: "octo", repo: "forrest" },
  );
  assert.equal(installation.id, installationId);
  assert.equal(installation.app_id, APP_ID);

  const octokit = await app.getInstallationOctokit(installationId);
  const route = "POST /repos/{owner}/{repo}/actions/runners/generate-jitconfig";
  const made = [];
  for (const name of ["r1", "r2", "r3"]) {
    const { status, data } = await octokit.request(route, {
      owner: "octo",
      repo: "forrest",
      name,
      runner_group_id: 1,
      labels: ["self-hosted", "linux"],
    });
    assert.equal(status, 201);
    assert.equal(data.runner.status, "offline");
    assert.equal(data.runner.busy, false);
    assert.deepEqual(
      data.runner.labels.map((l) => [l.name, l.type]),
      [["self-hosted", "read-only"], ["linux", "custom"]],
    );
    const config = JSON.parse(atob(data.encoded_jit_config));
    assert.equal(config.runner_id, data.runner.id);
    assert.equal(typeof config.secret, "string");
    made.push(data.runner.id);
  }
  await assert.rejects(
    octokit.request(route, {
      owner: "octo",
      repo: "forrest",
      name: "r1",
      runner_group_id: 1,
      labels: ["x"],
    }),
    (error: { status?: number }) => error.status === 409,
  );

  const list = (page: number) =>
    octokit.request("GET /repos/{owner}/{repo}/actions/runners", {
      owner: "octo",
      repo: "forrest",
      per_page: 2,
      page,
    });
  const [first, second] = [await list(1), await list(2)];
  assert.equal(first.data.total_count, 3);
  assert.deepEqual(first.data.runners.map((r) => r.id), made.slice(0, 2));
  assert.deepEqual(second.data.runners.map((r) => r.id), made.slice(2));
  assert.match(first.headers.link ?? "", /[?&]page=2[^>]*>; rel="next"/);

  const remove = (runner_id: number) =>
    octokit.request(
      "DELETE /repos/{owner}/{repo}/actions/runners/{runner_id}",
      { owner: "octo", repo: "forrest", runner_id },
    );
  assert.equal((await remove(made[0]!)).status, 204);
  await assert.rejects(
    remove(made[0]!),
    (error: { status?: number }) => error.status === 404,
  );
  assert.deepEqual(
    gh.runners("octo", "forrest").map((r) => r.id),
    made.slice(1),
  );
  assert.deepEqual(gh.violations, []);
  assert.deepEqual(
    gh.requests.map((r) => `${r.method} ${r.status}`),
    [
      "GET 200",
      "POST 201",
      "POST 201",
      "POST 201",
      "POST 201",
      "POST 409",
      "GET 200",
      "GET 200",
      "DELETE 204",
      "DELETE 404",
    ],
  );
});

Deno.test("bad JWTs and tokens get 401, unknown things 404", async () => {
  await using gh = await start();
  const { installationId } = gh.addRepo("octo", "forrest");
  const other = gh.addRepo("someone", "else").installationId;
  const installation = "/repos/octo/forrest/installation";
  const otherKey = await generateAppKey();
  for (
    const [authorization, message] of [
      [undefined, /could not be decoded/],
      [`Bearer ${jwt({}, otherKey)}`, /could not be decoded/],
      [`Bearer ${jwt({ iss: APP_ID + 1 })}`, /Integration not found/],
      [`Bearer ${jwt({ exp: Date.now() / 1000 - 5 })}`, /'exp'/],
      [`Bearer ${jwt({ exp: Date.now() / 1000 + 900 })}`, /too far/],
      [`Bearer ${jwt({ iat: Date.now() / 1000 + 120 })}`, /'iat'/],
    ] as const
  ) {
    const answer = await call(gh, "GET", installation, authorization);
    assert.equal(answer.status, 401, String(authorization));
    assert.match(String(answer.json!.message), message);
  }
  const asString = jwt({ iss: String(APP_ID) });
  assert.equal(
    (await call(gh, "GET", installation, `Bearer ${asString}`)).status,
    200,
  );
  assert.equal(
    (await call(gh, "GET", "/repos/octo/nope/installation", `Bearer ${jwt()}`))
      .status,
    404,
  );

  const runners = "/repos/octo/forrest/actions/runners";
  const token = await tokenFor(gh, installationId);
  for (
    const authorization of [
      undefined,
      "token ghs_bogus",
      `Bearer ${jwt()}`,
      await tokenFor(gh, other),
    ]
  ) {
    const answer = await call(gh, "GET", runners, authorization);
    assert.equal(answer.status, 401, String(authorization));
    assert.equal(answer.json!.message, "Bad credentials");
  }
  assert.equal((await call(gh, "GET", runners, token)).status, 200);
  const bearer = token.replace(/^token/, "bearer");
  assert.equal((await call(gh, "GET", runners, bearer)).status, 200);
  assert.equal(
    (await call(gh, "GET", "/repos/octo/nope/actions/runners", token)).status,
    404,
  );
  assert.equal((await call(gh, "GET", "/user/repos", token)).status, 404);
  assert.equal((await call(gh, "GET", "/no/such/endpoint")).status, 404);
  assert.deepEqual(gh.violations, []);
});

Deno.test("requests the OpenAPI description refuses are violations", async () => {
  await using gh = await start();
  const token = await tokenFor(
    gh,
    gh.addRepo("octo", "forrest").installationId,
  );
  const jit = "/repos/octo/forrest/actions/runners/generate-jitconfig";
  const empty = await call(gh, "POST", jit, token, {
    name: "a",
    runner_group_id: 1,
    labels: [],
  });
  assert.equal(empty.status, 422);
  const wrongType = await call(gh, "POST", jit, token, {
    name: "a",
    runner_group_id: "1",
    labels: ["x"],
  });
  assert.equal(wrongType.status, 422);
  await call(
    gh,
    "GET",
    "/repos/octo/forrest/actions/runners?per_page=many",
    token,
  );
  await call(
    gh,
    "GET",
    "/repos/octo/forrest/actions/runs?status=sleeping",
    token,
  );
  assert.equal(gh.violations.length, 4, gh.violations.join("\n"));
  assert.match(gh.violations[0]!, /generate-runner-jitconfig.*request.*labels/);
  assert.match(gh.violations[1]!, /runner_group_id must be integer/);
  assert.match(gh.violations[2]!, /per_page must be integer/);
  assert.match(gh.violations[3]!, /status must be equal to one of/);
  gh.violations.length = 0; // seen: close() need not fail the test
});

Deno.test("close() fails a test that leaves a violation", async () => {
  const gh = await start();
  const token = await tokenFor(
    gh,
    gh.addRepo("octo", "forrest").installationId,
  );
  await call(gh, "GET", "/repos/octo/forrest/actions/runs?page=first", token);
  await assert.rejects(
    gh.close(),
    /1 OpenAPI violation\(s\):\n.*list-workflow-runs-for-repo.*page must be integer/,
  );
});

Deno.test("runs and jobs are listed by status, newest run first", async () => {
  await using gh = await start();
  const token = await tokenFor(
    gh,
    gh.addRepo("octo", "forrest").installationId,
  );
  const before = new Date(Date.now() - 2000).toISOString().replace(/\.\d+/, "");
  const a = await gh.queueJob({
    owner: "octo",
    repo: "forrest",
    labels: ["x"],
    webhook: false,
  });
  const b = await gh.queueJob({
    owner: "octo",
    repo: "forrest",
    labels: ["x"],
    webhook: false,
  });
  await gh.queueJob({
    owner: "octo",
    repo: "forrest",
    labels: ["y"],
    runId: b.runId,
    webhook: false,
  });
  await gh.cancelJob(a.id);

  const runs = async (query: string) => {
    const answer = await call(
      gh,
      "GET",
      `/repos/octo/forrest/actions/runs?${query}`,
      token,
    );
    assert.equal(answer.status, 200);
    const list = answer.json!.workflow_runs as { id: number; status: string }[];
    assert.equal(answer.json!.total_count, list.length);
    return list.map((r) => `${r.id}:${r.status}`);
  };
  assert.deepEqual(await runs("per_page=100"), [
    `${b.runId}:queued`,
    `${a.runId}:completed`,
  ]);
  assert.deepEqual(await runs("status=queued"), [`${b.runId}:queued`]);
  assert.deepEqual(await runs("status=in_progress"), []);
  assert.deepEqual(await runs(`created=>=${before}`), [
    `${b.runId}:queued`,
    `${a.runId}:completed`,
  ]);
  assert.deepEqual(await runs("created=<2001-01-01"), []);

  const jobs = await call(
    gh,
    "GET",
    `/repos/octo/forrest/actions/runs/${b.runId}/jobs?per_page=1&page=2&filter=latest`,
    token,
  );
  assert.equal(jobs.json!.total_count, 2);
  const [job] = jobs.json!.jobs as Record<string, unknown>[];
  assert.deepEqual([job!.labels, job!.status, job!.runner_name], [
    ["y"],
    "queued",
    null,
  ]);
  const one = await call(
    gh,
    "GET",
    `/repos/octo/forrest/actions/jobs/${a.id}`,
    token,
  );
  assert.deepEqual([one.json!.status, one.json!.conclusion], [
    "completed",
    "cancelled",
  ]);
  assert.equal(
    (await call(
      gh,
      "GET",
      `/repos/octo/forrest/actions/runs/${a.id}/jobs`,
      token,
    )).status,
    404,
  );
  assert.deepEqual(gh.violations, []);
});

Deno.test("failNext answers the next requests with the fault, then recovers", async () => {
  await using gh = await start();
  const token = await tokenFor(
    gh,
    gh.addRepo("octo", "forrest").installationId,
  );
  gh.failNext(2, {
    status: 503,
    headers: { "retry-after": "1" },
    body: { message: "try later" },
    delayMs: 20,
  });
  const runners = `${gh.url}/repos/octo/forrest/actions/runners`;
  for (let i = 0; i < 2; i++) {
    const response = await fetch(runners, {
      headers: { authorization: token },
    });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "1");
    assert.deepEqual(await response.json(), { message: "try later" });
  }
  assert.equal(
    (await call(gh, "GET", "/repos/octo/forrest/actions/runners", token))
      .status,
    200,
  );
  assert.deepEqual(
    gh.requests.slice(-3).map((r) => [r.path, r.status]),
    [
      ["/repos/octo/forrest/actions/runners", 503],
      ["/repos/octo/forrest/actions/runners", 503],
      ["/repos/octo/forrest/actions/runners", 200],
    ],
  );
});

Deno.test("GitHubDouble answers a conditional GET 304 while the listing is unchanged, and counts only the 200s", async () => {
  await using gh = await start();
  const token = await tokenFor(
    gh,
    gh.addRepo("octo", "forrest").installationId,
  );
  const get = async (path: string, etag?: string, authorization = token) => {
    const response = await fetch(`${gh.url}${path}`, {
      headers: {
        authorization,
        ...(etag === undefined ? {} : { "if-none-match": etag }),
      },
    });
    return {
      status: response.status,
      etag: response.headers.get("etag"),
      body: await response.text(),
    };
  };
  const queued = "/repos/octo/forrest/actions/runs?status=queued";
  const a = await gh.queueJob({
    owner: "octo",
    repo: "forrest",
    labels: ["x"],
    webhook: false,
  });
  const from = gh.requests.length;
  const first = await get(queued);
  assert.equal(first.status, 200);
  assert.match(first.etag!, /^W\/"[0-9a-f]{64}"$/);
  const again = await get(queued, first.etag!);
  assert.deepEqual(again, { status: 304, etag: first.etag, body: "" });
  // A strong form of the same tag, or one of a list, matches too.
  assert.equal(
    (await get(queued, `"x", ${first.etag!.slice(2)}`)).status,
    304,
  );
  // A bad token gets its 401, ETag or not.
  assert.equal((await get(queued, first.etag!, "token nope")).status, 401);

  // A new run changes the listing, and its ETag.
  const b = await gh.queueJob({
    owner: "octo",
    repo: "forrest",
    labels: ["x"],
    webhook: false,
  });
  const changed = await get(queued, first.etag!);
  assert.equal(changed.status, 200);
  assert.notEqual(changed.etag, first.etag);
  assert.equal(
    (JSON.parse(changed.body).workflow_runs as unknown[]).length,
    2,
  );

  // A later job queued in a run that is in progress: the run's jobs
  // listing changes (the runs listing shows the run in progress still).
  await gh.startJobElsewhere(a.id, { webhook: false });
  const jobsPath = `/repos/octo/forrest/actions/runs/${a.runId}/jobs`;
  const jobs = await get(jobsPath);
  assert.equal((await get(jobsPath, jobs.etag!)).status, 304);
  await gh.queueJob({
    owner: "octo",
    repo: "forrest",
    labels: ["x"],
    runId: a.runId,
    webhook: false,
  });
  const later = await get(jobsPath, jobs.etag!);
  assert.equal(later.status, 200);
  assert.deepEqual(
    (JSON.parse(later.body).jobs as { status: string }[]).map((j) => j.status),
    ["in_progress", "queued"],
  );
  await gh.finishJobElsewhere(a.id, { webhook: false });
  await gh.cancelJob(b.id);

  // 200, 304, 304, 401, 200, 200, 304, 200: the 401 counts too.
  assert.deepEqual(gh.requestCost(from), {
    requests: 8,
    counted: 5,
    notModified: 3,
  });
  assert.deepEqual(
    gh.requestCost(from, (r) => r.conditional),
    { requests: 6, counted: 3, notModified: 3 },
  );
  // Only the cancel sent a webhook (to no target here).
  assert.deepEqual(gh.deliveries.map((d) => d.action), ["completed"]);
  assert.deepEqual(gh.violations, []);
});
