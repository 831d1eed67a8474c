import assert from "node:assert/strict";
import { standinCall } from "./standin.ts";
import { GitHubDouble, type GitHubDoubleOptions } from "./double.ts";
import { generateAppKey, signAppJwt } from "./jwt.ts";
import type { ScaleSetOptions } from "./scale_sets.ts";

const APP_ID = 31;
const KEY = await generateAppKey();
const API_VERSION = "6.0-preview";

function start(
  scaleSets: ScaleSetOptions = {},
  more: Partial<GitHubDoubleOptions> = {},
): Promise<GitHubDouble> {
  return GitHubDouble.start({
    appId: APP_ID,
    privateKeyPem: KEY,
    webhookSecret: "hush",
    scaleSets,
    ...more,
  });
}

type Json = Record<string, unknown>;

interface Answer {
  readonly status: number;
  readonly json: Json | undefined;
  readonly headers: Headers;
  readonly text: string;
}

async function answerOf(response: Response): Promise<Answer> {
  const raw = await response.text();
  const text = raw.replace(/^\uFEFF/, "");
  return {
    status: response.status,
    json: text ? JSON.parse(text) : undefined,
    headers: response.headers,
    text: raw,
  };
}

async function installationToken(
  gh: GitHubDouble,
  installationId: number,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = signAppJwt(KEY, { iat: now - 30, exp: now + 500, iss: APP_ID });
  const answer = await answerOf(
    await fetch(`${gh.url}/app/installations/${installationId}/access_tokens`, {
      method: "POST",
      headers: { authorization: `Bearer ${jwt}` },
    }),
  );
  assert.equal(answer.status, 201);
  return String(answer.json!.token);
}

/** POST …/actions/runners/registration-token under `where` (`/orgs/acme`). */
async function registrationToken(
  gh: GitHubDouble,
  where: string,
  token: string,
): Promise<Answer> {
  return await answerOf(
    await fetch(`${gh.url}${where}/actions/runners/registration-token`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
    }),
  );
}

async function runnerRegistration(
  gh: GitHubDouble,
  registration: string,
  configUrl: string,
): Promise<Answer> {
  return await answerOf(
    await fetch(`${gh.url}/actions/runner-registration`, {
      method: "POST",
      headers: {
        authorization: `RemoteAuth ${registration}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ url: configUrl, runner_event: "register" }),
    }),
  );
}

/** The Actions service as an organization's client sees it. */
interface Admin {
  readonly url: string;
  readonly token: string;
}

/** The whole chain for organization acme (with repository app). */
async function connect(gh: GitHubDouble): Promise<Admin> {
  gh.addOrg("acme");
  const { installationId } = gh.addRepo("acme", "app");
  const token = await installationToken(gh, installationId);
  const registration = await registrationToken(gh, "/orgs/acme", token);
  assert.equal(registration.status, 201);
  const admin = await runnerRegistration(
    gh,
    String(registration.json!.token),
    "https://github.com/acme",
  );
  assert.equal(admin.status, 201);
  return { url: String(admin.json!.url), token: String(admin.json!.token) };
}

/** An Actions service call, with api-version unless told otherwise. */
async function call(
  admin: Admin,
  method: string,
  path: string,
  body?: unknown,
  options: { token?: string; apiVersion?: boolean } = {},
): Promise<Answer> {
  const url = new URL(path, admin.url);
  if (options.apiVersion !== false) {
    url.searchParams.set("api-version", API_VERSION);
  }
  return await answerOf(
    await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${options.token ?? admin.token}`,
        "content-type": "application/json",
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    }),
  );
}

const SCALE_SETS = "_apis/runtime/runnerscalesets";

async function createScaleSet(
  admin: Admin,
  name: string,
  runnerGroupId = 1,
  labels: string[] = [name],
): Promise<number> {
  const made = await call(admin, "POST", SCALE_SETS, {
    name,
    runnerGroupId,
    labels: labels.map((l) => ({ name: l })),
    RunnerSetting: { ephemeral: true, isElastic: true, disableUpdate: true },
  });
  assert.equal(made.status, 200, made.text);
  return Number(made.json!.id);
}

interface SessionJson {
  readonly sessionId: string;
  readonly messageQueueUrl: string;
  readonly messageQueueAccessToken: string;
  readonly statistics: Json;
}

async function openSession(
  admin: Admin,
  scaleSetId: number,
  ownerName = "host-1",
): Promise<SessionJson> {
  const answer = await call(
    admin,
    "POST",
    `${SCALE_SETS}/${scaleSetId}/sessions`,
    { ownerName },
  );
  assert.equal(answer.status, 200, answer.text);
  return answer.json as unknown as SessionJson;
}

interface Polled {
  readonly status: number;
  readonly message: Json | undefined;
  /** The job messages of a 200, decoded from `body`. */
  readonly jobs: Json[];
}

async function poll(
  session: SessionJson,
  options: {
    last?: number;
    capacity?: number;
    token?: string;
    signal?: AbortSignal;
  } = {},
): Promise<Polled> {
  const url = new URL(session.messageQueueUrl);
  if (options.last) url.searchParams.set("lastMessageId", String(options.last));
  const answer = await answerOf(
    await fetch(url, {
      headers: {
        authorization: `Bearer ${
          options.token ?? session.messageQueueAccessToken
        }`,
        accept: `application/json; api-version=${API_VERSION}`,
        ...(options.capacity === undefined
          ? {}
          : { "x-scalesetmaxcapacity": String(options.capacity) }),
      },
      ...(options.signal ? { signal: options.signal } : {}),
    }),
  );
  const message = answer.json;
  return {
    status: answer.status,
    message,
    jobs: typeof message?.body === "string" ? JSON.parse(message.body) : [],
  };
}

async function ack(session: SessionJson, messageId: unknown): Promise<number> {
  const response = await fetch(`${session.messageQueueUrl}/${messageId}`, {
    method: "DELETE",
    headers: {
      authorization: `Bearer ${session.messageQueueAccessToken}`,
      "content-type": "application/json",
    },
  });
  await response.body?.cancel();
  return response.status;
}

async function acquire(
  admin: Admin,
  scaleSetId: number,
  ids: number[],
  token: string,
): Promise<Answer> {
  return await call(
    admin,
    "POST",
    `${SCALE_SETS}/${scaleSetId}/acquirejobs`,
    ids,
    { token },
  );
}

async function jitConfig(
  admin: Admin,
  scaleSetId: number,
  name: string,
): Promise<Answer> {
  return await call(
    admin,
    "POST",
    `${SCALE_SETS}/${scaleSetId}/generatejitconfig`,
    { name, workFolder: "_work" },
  );
}

function jwtClaims(token: string): Json {
  const payload = token.split(".")[1]!.replaceAll("-", "+")
    .replaceAll("_", "/");
  return JSON.parse(atob(payload + "=".repeat((4 - payload.length % 4) % 4)));
}

/** The one job message of a 200, with its message type checked. */
function only(polled: Polled, messageType: string): Json {
  assert.equal(polled.status, 200);
  assert.equal(polled.message!.messageType, "RunnerScaleSetJobMessages");
  assert.equal(polled.jobs.length, 1);
  assert.equal(polled.jobs[0]!.messageType, messageType);
  return polled.jobs[0]!;
}

Deno.test("runner-registration trades a registration token for the service URL and an admin token", async () => {
  await using gh = await start({ adminTokenTtlMs: 120_000 });
  gh.addOrg("acme");
  const { installationId } = gh.addRepo("acme", "app");
  const token = await installationToken(gh, installationId);

  const forOrg = await registrationToken(gh, "/orgs/acme", token);
  assert.equal(forOrg.status, 201);
  assert.match(String(forOrg.json!.token), /^[A-Z0-9]{29}$/);
  const expiresIn = Date.parse(String(forOrg.json!.expires_at)) - Date.now();
  assert.ok(expiresIn > 59 * 60_000 && expiresIn <= 3600_000, `${expiresIn}`);
  assert.ok(gh.issuedSecrets.includes(String(forOrg.json!.token)));
  const forRepo = await registrationToken(gh, "/repos/acme/app", token);
  assert.equal(forRepo.status, 201);
  assert.equal((await registrationToken(gh, "/orgs/other", token)).status, 404);
  assert.equal(
    (await registrationToken(gh, "/orgs/acme", "nope")).status,
    401,
  );

  const orgToken = String(forOrg.json!.token);
  const admin = await runnerRegistration(gh, orgToken, "http://x/acme/");
  assert.equal(admin.status, 201);
  const origin = new URL(gh.url).origin;
  assert.equal(admin.json!.url, `${origin}/tenant/1/`);
  const exp = Number(jwtClaims(String(admin.json!.token)).exp);
  assert.ok(Math.abs(exp * 1000 - (Date.now() + 120_000)) < 5_000, `${exp}`);
  assert.ok(gh.issuedSecrets.includes(String(admin.json!.token)));

  const repoToken = String(forRepo.json!.token);
  const scopes = [
    [repoToken, "https://github.com/acme/app", 201],
    [repoToken, "https://github.com/ACME/App", 201],
    [repoToken, "https://github.com/acme", 403],
    [orgToken, "https://github.com/acme/app", 403],
    [orgToken, "https://github.com/enterprises/acme", 403],
    [orgToken, "https://github.com/a/b/c", 400],
    [orgToken, "https://github.com/", 400],
    ["UNKNOWN", "https://github.com/acme", 401],
  ] as const;
  for (const [registration, url, status] of scopes) {
    const answer = await runnerRegistration(gh, registration, url);
    assert.equal(answer.status, status, `${url}: ${answer.text}`);
  }
  assert.deepEqual(
    gh.scaleSetRequests.map((r) => `${r.method} ${r.path} ${r.auth}`)
      .slice(0, 1),
    ["POST /actions/runner-registration remote-auth"],
  );
  assert.equal(gh.requests.some((r) => r.path.includes("runner-reg")), false);
});

Deno.test("an enterprise gets registration tokens with a personal access token only", async () => {
  await using gh = await start({}, { description: "ghec", prefix: "/api/v3" });
  gh.addEnterprise("megacorp");
  gh.addOrg("acme", "megacorp");
  const { installationId } = gh.addRepo("acme", "app");
  gh.addToken("ghp_enterprise");
  const app = await installationToken(gh, installationId);
  const where = "/enterprises/megacorp";
  assert.equal((await registrationToken(gh, where, app)).status, 403);
  const pat = await registrationToken(gh, where, "ghp_enterprise");
  assert.equal(pat.status, 201);
  const admin = await runnerRegistration(
    gh,
    String(pat.json!.token),
    "https://ghes.example/Enterprises/megacorp",
  );
  assert.equal(admin.status, 201, admin.text);
  // The service lives outside the API prefix, as /_guest/ does.
  assert.equal(admin.json!.url, `${new URL(gh.url).origin}/tenant/1/`);
  const groups = await call(
    { url: String(admin.json!.url), token: String(admin.json!.token) },
    "GET",
    "_apis/runtime/runnergroups/?groupName=Default",
  );
  assert.deepEqual(groups.json, {
    count: 1,
    value: [{ id: 1, name: "Default", size: 0, isDefaultGroup: true }],
  });
});

Deno.test("runner groups are found by name; scale sets are made, found, changed and deleted", async () => {
  await using gh = await start();
  const admin = await connect(gh);
  const big = gh.addRunnerGroup({ org: "acme" }, "Big");

  const group = async (name: string) =>
    (await call(admin, "GET", `_apis/runtime/runnergroups/?groupName=${name}`))
      .json;
  assert.deepEqual(await group("default"), {
    count: 1,
    value: [{ id: 1, name: "Default", size: 0, isDefaultGroup: true }],
  });
  assert.deepEqual(await group("BIG"), {
    count: 1,
    value: [{ id: big, name: "Big", size: 0, isDefaultGroup: false }],
  });
  assert.deepEqual(await group("none"), { count: 0, value: [] });

  const made = await call(admin, "POST", SCALE_SETS, {
    name: "linux",
    runnerGroupId: big,
    labels: [],
    RunnerSetting: { ephemeral: true, isElastic: true, disableUpdate: true },
  });
  assert.equal(made.status, 200, made.text);
  const id = Number(made.json!.id);
  assert.deepEqual(
    {
      ...made.json,
      createdOn: typeof made.json!.createdOn,
      statistics: undefined,
    },
    {
      id,
      name: "linux",
      runnerGroupId: big,
      runnerGroupName: "Big",
      labels: [{ name: "linux", type: "System" }],
      RunnerSetting: { ephemeral: true, isElastic: true, disableUpdate: true },
      enabled: true,
      createdOn: "string",
      runnerJitConfigUrl:
        `${admin.url}_apis/runtime/runnerscalesets/${id}/generatejitconfig`,
      statistics: undefined,
    },
  );
  assert.equal((made.json!.statistics as Json).totalAssignedJobs, 0);

  const again = await call(admin, "POST", SCALE_SETS, {
    name: "Linux",
    runnerGroupId: big,
  });
  assert.equal(again.status, 409);
  assert.equal(
    again.json!.typeName,
    "GitHub.Actions.Runtime.WebApi.RunnerScaleSetExistsException",
  );
  assert.equal(
    (await call(admin, "POST", SCALE_SETS, { name: "x", runnerGroupId: 99 }))
      .status,
    404,
  );
  const inDefault = await createScaleSet(admin, "linux", 1, ["linux", "x64"]);

  const byName = await call(
    admin,
    "GET",
    `${SCALE_SETS}?runnerGroupId=${big}&name=linux`,
  );
  assert.deepEqual(
    [byName.json!.count, (byName.json!.value as Json[])[0]!.id],
    [1, id],
  );
  const none = await call(admin, "GET", `${SCALE_SETS}?runnerGroupId=1&name=x`);
  assert.deepEqual(none.json, { count: 0, value: [] });

  const patched = await call(admin, "PATCH", `${SCALE_SETS}/${id}`, {
    labels: [{ name: "linux" }, { name: "gpu", type: "User" }],
  });
  assert.equal(patched.status, 200);
  assert.deepEqual(patched.json!.labels, [
    { name: "linux", type: "System" },
    { name: "gpu", type: "User" },
  ]);
  assert.deepEqual(
    gh.scaleSets().map((s) => [s.id, s.name, s.runnerGroupId, s.labels]),
    [[id, "linux", big, ["linux", "gpu"]], [inDefault, "linux", 1, [
      "linux",
      "x64",
    ]]],
  );
  assert.deepEqual(gh.scaleSets()[0]!.scope, {
    kind: "organization",
    org: "acme",
  });

  assert.equal(
    (await call(admin, "DELETE", `${SCALE_SETS}/${id}`)).status,
    204,
  );
  const gone = await call(admin, "GET", `${SCALE_SETS}/${id}`);
  assert.equal(gone.status, 404);
  assert.equal(
    gone.json!.typeName,
    "GitHub.Actions.Runtime.WebApi.RunnerScaleSetNotFoundException",
  );
  assert.ok(gone.headers.get("activityid"));
  assert.deepEqual(gh.scaleSets().map((s) => s.id), [inDefault]);
});

Deno.test("the admin token is checked, and so is api-version", async () => {
  await using gh = await start();
  const admin = await connect(gh);
  const ok = await call(admin, "GET", SCALE_SETS);
  assert.equal(ok.status, 200);
  assert.ok(ok.headers.get("activityid"));

  const unversioned = await call(admin, "GET", SCALE_SETS, undefined, {
    apiVersion: false,
  });
  assert.equal(unversioned.status, 200);
  assert.equal(gh.violations.length, 1);
  assert.match(gh.violations[0]!, /GET \/tenant\/1\/.* no api-version/);
  gh.violations.length = 0;

  const garbage = await call(admin, "GET", SCALE_SETS, undefined, {
    token: "x.y.z",
  });
  assert.equal(garbage.status, 401);
  gh.expireScaleSetTokens("admin");
  const expired = await call(admin, "GET", SCALE_SETS);
  assert.equal(expired.status, 401);
  assert.equal(
    expired.json!.typeName,
    "GitHub.Services.WebApi.VssUnauthorizedException",
  );
  // A new trade gives a token that works.
  const fresh = await connect(gh);
  assert.equal((await call(fresh, "GET", SCALE_SETS)).status, 200);
  assert.deepEqual(
    gh.scaleSetRequests.filter((r) => r.path.startsWith("/tenant/"))
      .map((r) => `${r.status} ${r.auth}`),
    ["200 admin", "200 admin", "401 other", "401 admin", "200 admin"],
  );
});

Deno.test("a scale set has one session at a time; it is refreshed with a new token and deleted", async () => {
  await using gh = await start();
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux");
  const session = await openSession(admin, id, "host-1");
  assert.match(session.sessionId, /^[0-9a-f-]{36}$/);
  assert.equal(
    session.messageQueueUrl,
    `${admin.url}msgqueue/${session.sessionId}`,
  );
  assert.ok(Number(jwtClaims(session.messageQueueAccessToken).exp) > 0);
  assert.equal(session.statistics.totalAssignedJobs, 0);

  const conflict = await call(admin, "POST", `${SCALE_SETS}/${id}/sessions`, {
    ownerName: "host-2",
  });
  assert.equal(conflict.status, 409);
  assert.deepEqual(conflict.json, {
    typeName:
      "GitHub.Actions.Runtime.WebApi.RunnerScaleSetSessionConflictException",
    message:
      "The actions runner scaleset linux already has an active session for owner host-1.",
  });

  const path = `${SCALE_SETS}/${id}/sessions/${session.sessionId}`;
  const refreshed = await call(admin, "PATCH", path);
  assert.equal(refreshed.status, 200);
  assert.equal(refreshed.json!.sessionId, session.sessionId);
  assert.notEqual(
    refreshed.json!.messageQueueAccessToken,
    session.messageQueueAccessToken,
  );
  assert.deepEqual(gh.openSessions(), [
    { scaleSetId: id, sessionId: session.sessionId, ownerName: "host-1" },
  ]);

  assert.equal((await call(admin, "DELETE", path)).status, 204);
  assert.equal((await call(admin, "DELETE", path)).status, 404);
  assert.equal((await call(admin, "PATCH", path)).status, 404);
  assert.deepEqual(gh.openSessions(), []);
  assert.equal((await poll(session)).status, 404);
  const next = await openSession(admin, id, "host-2");
  assert.notEqual(next.sessionId, session.sessionId);
});

Deno.test("a session nobody polls expires, and a poll keeps it alive", async () => {
  await using gh = await start({ sessionIdleTtlMs: 300, pollWindowMs: 400 });
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux");
  const session = await openSession(admin, id);
  // Blocked longer than the idle TTL, and alive all along.
  assert.equal((await poll(session)).status, 202);
  assert.equal(gh.openSessions().length, 1);
  await new Promise((resolve) => setTimeout(resolve, 400));
  assert.deepEqual(gh.openSessions(), []);
  const polled = await poll(session);
  assert.equal(polled.status, 404);
  assert.equal(
    polled.message!.typeName,
    "GitHub.Actions.Runtime.WebApi.MessageQueueNotFoundException",
  );
  await openSession(admin, id, "host-2");
});

Deno.test("a message poll blocks for the window, then answers 202; queue tokens expire", async () => {
  await using gh = await start({ pollWindowMs: 300 });
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux");
  const session = await openSession(admin, id);
  const before = Date.now();
  const polled = await poll(session, { capacity: 4 });
  assert.equal(polled.status, 202);
  assert.ok(Date.now() - before >= 280, `${Date.now() - before} ms`);
  assert.equal(gh.scaleSets()[0]!.maxCapacity, 4);
  const last = gh.scaleSetRequests.at(-1)!;
  assert.deepEqual(
    [last.method, last.status, last.auth, last.maxCapacity],
    ["GET", 202, "queue", 4],
  );

  gh.expireScaleSetTokens("queue");
  assert.equal((await poll(session)).status, 401);
  assert.equal(await ack(session, 1), 401);
  const refreshed = await call(
    admin,
    "PATCH",
    `${SCALE_SETS}/${id}/sessions/${session.sessionId}`,
  );
  const renewed = refreshed.json as unknown as SessionJson;
  assert.equal((await poll(renewed)).status, 202);

  // The admin token on a queue endpoint breaks the protocol.
  assert.equal((await poll(session, { token: admin.token })).status, 401);
  assert.equal(gh.violations.length, 1);
  assert.match(gh.violations[0]!, /queue endpoint got the admin token/);
  gh.violations.length = 0;
});

Deno.test("a job comes as JobAssigned, again until acknowledged, then never again", async () => {
  await using gh = await start({ pollWindowMs: 200 });
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux", 1, ["self-hosted", "linux"]);
  const session = await openSession(admin, id);
  const job = await gh.queueJob({
    owner: "acme",
    repo: "app",
    labels: ["self-hosted", "Linux"],
  });
  assert.equal(gh.jobScaleSet(job.id), id);

  const first = await poll(session, { capacity: 2 });
  const assigned = only(first, "JobAssigned");
  assert.equal(first.message!.messageId, 1);
  assert.deepEqual(
    {
      ...assigned,
      queueTime: typeof assigned.queueTime,
      scaleSetAssignTime: typeof assigned.scaleSetAssignTime,
    },
    {
      messageType: "JobAssigned",
      runnerRequestId: 0,
      repositoryName: "app",
      ownerName: "acme",
      jobId: String(job.id),
      jobWorkflowRef: "acme/app/.github/workflows/ci.yml@refs/heads/main",
      jobDisplayName: job.name,
      workflowRunId: job.runId,
      eventName: "push",
      requestLabels: ["self-hosted", "Linux"],
      queueTime: "string",
      scaleSetAssignTime: "string",
      runnerAssignTime: "0001-01-01T00:00:00Z",
      finishTime: "0001-01-01T00:00:00Z",
    },
  );
  assert.notEqual(assigned.scaleSetAssignTime, "0001-01-01T00:00:00Z");
  assert.deepEqual(first.message!.statistics, {
    totalAvailableJobs: 0,
    totalAcquiredJobs: 0,
    totalAssignedJobs: 1,
    totalRunningJobs: 0,
    totalRegisteredRunners: 0,
    totalBusyRunners: 0,
    totalIdleRunners: 0,
  });

  // Not acknowledged: delivered again, also with lastMessageId 0.
  assert.equal((await poll(session)).message!.messageId, 1);
  // lastMessageId skips it without acknowledging it.
  assert.equal((await poll(session, { last: 1 })).status, 202);
  assert.equal(await ack(session, 1), 204);
  assert.equal(await ack(session, 1), 204);
  assert.equal(await ack(session, 9), 404);
  assert.equal((await poll(session)).status, 202);
  assert.deepEqual(gh.scaleSets()[0]!.unacknowledged, []);
  assert.equal(gh.scaleSets()[0]!.nextMessageId, 2);

  // A job no scale set has the labels for is not theirs.
  const other = await gh.queueJob({
    owner: "acme",
    repo: "app",
    labels: ["self-hosted", "windows"],
  });
  assert.equal(gh.jobScaleSet(other.id), undefined);
  assert.equal((await poll(session)).status, 202);
});

Deno.test("a scale-set runner takes its job through /_guest/: JobStarted, then JobCompleted", async () => {
  await using gh = await start({ pollWindowMs: 200 });
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux", 1, ["self-hosted", "linux"]);
  const session = await openSession(admin, id);
  await poll(session, { capacity: 2 });
  const job = await gh.queueJob({
    owner: "acme",
    repo: "app",
    labels: ["self-hosted", "linux"],
    script: "echo hi",
  });
  const assigned = await poll(session, { capacity: 2 });
  only(assigned, "JobAssigned");
  assert.equal(await ack(session, assigned.message!.messageId), 204);

  const made = await jitConfig(admin, id, "vm-1");
  assert.equal(made.status, 200, made.text);
  const runner = made.json!.runner as Json;
  assert.deepEqual(runner, {
    id: runner.id,
    name: "vm-1",
    runnerScaleSetId: id,
  });
  const config = String(made.json!.encodedJITConfig);
  assert.deepEqual(
    Object.keys(JSON.parse(atob(config))).sort(),
    ["runner_id", "runner_name", "secret", "server_url", "work_folder"],
  );
  assert.ok(gh.issuedSecrets.includes(config));
  // An ordinary runner of the organization: the REST API lists it.
  const listed = gh.runnersOf({ org: "acme" });
  assert.deepEqual(
    listed.map((r) => [r.name, r.scaleSetId, r.labels]),
    [["vm-1", id, ["self-hosted", "linux"]]],
  );
  const duplicate = await jitConfig(admin, id, "vm-1");
  assert.equal(duplicate.status, 409);
  assert.equal(
    duplicate.json!.typeName,
    "GitHub.DistributedTask.WebApi.AgentExistsException",
  );

  // A runner of no scale set does not get a scale set's job.
  const token = await installationToken(
    gh,
    gh.addRepo("acme", "app").installationId,
  );
  const plain = await answerOf(
    await fetch(`${gh.url}/orgs/acme/actions/runners/generate-jitconfig`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({
        name: "plain",
        runner_group_id: 1,
        labels: ["self-hosted", "linux"],
      }),
    }),
  );
  assert.equal(plain.status, 201);
  const plainConfig = String(plain.json!.encoded_jit_config);
  assert.equal((await standinCall(gh, "take", plainConfig)).status, 204);

  assert.equal((await standinCall(gh, "online", config)).status, 200);
  assert.deepEqual(await standinCall(gh, "take", config), {
    status: 200,
    text: "echo hi",
  });
  const started = await poll(session, { last: 1 });
  const message = only(started, "JobStarted");
  assert.deepEqual(
    [message.jobId, message.runnerId, message.runnerName],
    [String(job.id), runner.id, "vm-1"],
  );
  assert.notEqual(message.runnerAssignTime, "0001-01-01T00:00:00Z");
  assert.deepEqual(
    started.message!.statistics,
    {
      totalAvailableJobs: 0,
      totalAcquiredJobs: 0,
      totalAssignedJobs: 1,
      totalRunningJobs: 1,
      totalRegisteredRunners: 1,
      totalBusyRunners: 1,
      totalIdleRunners: 0,
    },
  );
  assert.equal(await ack(session, started.message!.messageId), 204);

  const agent = `_apis/distributedtask/pools/0/agents/${runner.id}`;
  assert.deepEqual((await call(admin, "GET", agent)).json, runner);
  const byName = await call(
    admin,
    "GET",
    "_apis/distributedtask/pools/0/agents?agentName=vm-1",
  );
  assert.deepEqual(byName.json, { count: 1, value: [runner] });
  const busy = await call(admin, "DELETE", agent);
  assert.equal(busy.status, 409);
  assert.equal(
    busy.json!.typeName,
    "GitHub.DistributedTask.WebApi.JobStillRunningException",
  );

  assert.equal((await standinCall(gh, "done?exit=1", config)).status, 200);
  const completed = await poll(session, {
    last: Number(started.message!.messageId),
  });
  const done = only(completed, "JobCompleted");
  assert.deepEqual(
    [done.result, done.runnerId, done.runnerName],
    ["failed", runner.id, "vm-1"],
  );
  assert.notEqual(done.finishTime, "0001-01-01T00:00:00Z");
  assert.equal(
    (completed.message!.statistics as Json).totalAssignedJobs,
    0,
  );
  assert.equal(await ack(session, completed.message!.messageId), 204);
  const gone = await call(admin, "DELETE", agent);
  assert.equal(gone.status, 404);
  assert.equal(
    gone.json!.typeName,
    "GitHub.DistributedTask.WebApi.AgentNotFoundException",
  );
  assert.deepEqual(gh.job(job.id)?.conclusion, "failure");
  // The plain runner is left; an idle scale-set runner can be deleted.
  const idle = await jitConfig(admin, id, "vm-2");
  const idleId = (idle.json!.runner as Json).id;
  const path = `_apis/distributedtask/pools/0/agents/${idleId}`;
  assert.equal((await call(admin, "DELETE", path)).status, 204);
  assert.deepEqual(gh.runnersOf({ org: "acme" }).map((r) => r.name), [
    "plain",
  ]);
});

Deno.test("cancelling an assigned job sends JobCompleted canceled", async () => {
  await using gh = await start({ pollWindowMs: 200 });
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux");
  const session = await openSession(admin, id);
  const job = await gh.queueJob({
    owner: "acme",
    repo: "app",
    labels: ["linux"],
  });
  const assigned = await poll(session);
  only(assigned, "JobAssigned");
  assert.equal(await ack(session, assigned.message!.messageId), 204);
  await gh.cancelJob(job.id);
  const completed = only(await poll(session), "JobCompleted");
  assert.deepEqual(
    [completed.result, completed.runnerId, completed.runnerName],
    ["canceled", 0, ""],
  );
});

Deno.test("runners beyond the announced capacity are a violation", async () => {
  await using gh = await start({ pollWindowMs: 100 });
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux");
  const session = await openSession(admin, id);
  // Before any capacity is announced, there is no limit.
  for (const name of ["vm-1", "vm-2"]) {
    assert.equal((await jitConfig(admin, id, name)).status, 200);
  }
  assert.deepEqual(gh.violations, []);
  await poll(session, { capacity: 2 });
  assert.equal((await jitConfig(admin, id, "vm-3")).status, 200);
  assert.equal(gh.violations.length, 1);
  assert.match(gh.violations[0]!, /vm-3.*max capacity 2/);
  gh.violations.length = 0;
});

Deno.test("in GHES mode matching scale sets get JobAvailable, and the first to acquire wins", async () => {
  await using gh = await start({ mode: "ghes", pollWindowMs: 200 });
  const admin = await connect(gh);
  const other = gh.addRunnerGroup({ org: "acme" }, "other");
  const a = await createScaleSet(admin, "linux", 1);
  const b = await createScaleSet(admin, "linux", other);
  const [sa, sb] = [await openSession(admin, a), await openSession(admin, b)];
  const job = await gh.queueJob({
    owner: "acme",
    repo: "app",
    labels: ["linux"],
  });
  assert.equal(gh.jobScaleSet(job.id), undefined);
  const [pa, pb] = [await poll(sa), await poll(sb)];
  const [offerA, offerB] = [only(pa, "JobAvailable"), only(pb, "JobAvailable")];
  const requestId = Number(offerA.runnerRequestId);
  assert.ok(requestId > 0);
  assert.equal(offerB.runnerRequestId, requestId);
  assert.equal(
    offerA.acquireJobUrl,
    `${admin.url}_apis/runtime/runnerscalesets/${a}/acquirejobs?api-version=6.0-preview`,
  );
  assert.equal((pa.message!.statistics as Json).totalAvailableJobs, 1);
  for (const [session, polled] of [[sa, pa], [sb, pb]] as const) {
    assert.equal(await ack(session, polled.message!.messageId), 204);
  }

  const won = await acquire(
    admin,
    b,
    [requestId, 42],
    sb.messageQueueAccessToken,
  );
  assert.deepEqual(won.json, { count: 1, value: [requestId] });
  assert.equal(gh.jobScaleSet(job.id), b);
  const lost = await acquire(admin, a, [requestId], sa.messageQueueAccessToken);
  assert.deepEqual(lost.json, { count: 0, value: [] });
  const twice = await acquire(
    admin,
    b,
    [requestId],
    sb.messageQueueAccessToken,
  );
  assert.deepEqual(twice.json, { count: 1, value: [requestId] });
  assert.equal(
    (await acquire(admin, b, [requestId], sa.messageQueueAccessToken)).status,
    401,
  );
  const assigned = await poll(sb);
  assert.equal(only(assigned, "JobAssigned").runnerRequestId, requestId);
  assert.deepEqual(
    [
      (assigned.message!.statistics as Json).totalAssignedJobs,
      (assigned.message!.statistics as Json).totalAcquiredJobs,
    ],
    [1, 1],
  );
  assert.equal((await poll(sa)).status, 202);

  assert.equal(
    (await acquire(admin, b, [requestId], admin.token)).status,
    401,
  );
  assert.equal(gh.violations.length, 1);
  assert.match(
    gh.violations[0]!,
    /acquirejobs: a queue endpoint got the admin token/,
  );
  gh.violations.length = 0;
});

Deno.test("on github.com jobs go round-robin to scale sets with room, and wait without", async () => {
  await using gh = await start({ pollWindowMs: 100 });
  const admin = await connect(gh);
  const other = gh.addRunnerGroup({ org: "acme" }, "other");
  const a = await createScaleSet(admin, "linux", 1);
  const b = await createScaleSet(admin, "linux", other);
  const [sa, sb] = [await openSession(admin, a), await openSession(admin, b)];
  await Promise.all([poll(sa, { capacity: 1 }), poll(sb, { capacity: 1 })]);
  const queue = () =>
    gh.queueJob({ owner: "acme", repo: "app", labels: ["linux"] });
  const [j1, j2, j3] = [await queue(), await queue(), await queue()];
  assert.deepEqual(
    [j1, j2, j3].map((j) => gh.jobScaleSet(j.id)),
    [a, b, undefined],
  );
  assert.deepEqual(
    gh.scaleSets().map((s) => s.statistics.totalAssignedJobs),
    [1, 1],
  );
  await gh.cancelJob(j1.id);
  assert.equal(gh.jobScaleSet(j3.id), a);
  // More room: what waits goes where the room is.
  const j4 = await queue();
  assert.equal(gh.jobScaleSet(j4.id), undefined);
  await poll(sb, { capacity: 2, last: 100 });
  assert.equal(gh.jobScaleSet(j4.id), b);
  const [pa, pb] = [await poll(sa), await poll(sb)];
  assert.deepEqual(
    [pa.jobs[0]!.jobId, pb.jobs[0]!.jobId],
    [String(j1.id), String(j2.id)],
  );
  assert.deepEqual(
    gh.scaleSetRequests.filter((r) => r.maxCapacity !== undefined)
      .map((r) => r.maxCapacity),
    [1, 1, 2],
  );
});

Deno.test("without an announced capacity jobs alternate between scale sets with a session", async () => {
  await using gh = await start();
  const admin = await connect(gh);
  const other = gh.addRunnerGroup({ org: "acme" }, "other");
  const a = await createScaleSet(admin, "linux", 1);
  const b = await createScaleSet(admin, "linux", other);
  const c = await createScaleSet(
    admin,
    "linux",
    gh.addRunnerGroup(
      { org: "acme" },
      "third",
    ),
  );
  await openSession(admin, a);
  await openSession(admin, b);
  const queue = () =>
    gh.queueJob({ owner: "acme", repo: "app", labels: ["linux"] });
  const jobs = [await queue(), await queue(), await queue()];
  assert.deepEqual(jobs.map((j) => gh.jobScaleSet(j.id)), [a, b, a]);
  assert.equal(gh.scaleSets().find((s) => s.id === c)!.nextMessageId, 1);
});

Deno.test("deleteScaleSet ends its sessions, pending polls answer 404, and its jobs move on", async () => {
  await using gh = await start({ pollWindowMs: 5_000 });
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux");
  const session = await openSession(admin, id);
  const job = await gh.queueJob({
    owner: "acme",
    repo: "app",
    labels: ["linux"],
  });
  assert.equal(gh.jobScaleSet(job.id), id);
  const made = await jitConfig(admin, id, "vm-1");
  assert.equal(made.status, 200);
  const pending = poll(session, { last: 1 });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const before = Date.now();
  gh.deleteScaleSet(id);
  const polled = await pending;
  assert.equal(polled.status, 404);
  assert.ok(Date.now() - before < 2_000);
  assert.deepEqual(gh.openSessions(), []);
  assert.deepEqual(gh.runnersOf({ org: "acme" }), [], "its idle runner went");
  assert.equal(gh.jobScaleSet(job.id), undefined);
  assert.throws(() => gh.deleteScaleSet(id), /No scale set/);

  // Re-created: message ids start at 1 again, and the job comes back.
  const again = await createScaleSet(admin, "linux");
  const fresh = await openSession(admin, again);
  const assigned = await poll(fresh);
  assert.equal(assigned.message!.messageId, 1);
  assert.equal(only(assigned, "JobAssigned").jobId, String(job.id));
  assert.equal(gh.jobScaleSet(job.id), again);
});

Deno.test("expireAssignment cancels an assignment and assigns the job again, three times at most", async () => {
  await using gh = await start({ pollWindowMs: 100 });
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux");
  const session = await openSession(admin, id);
  const job = await gh.queueJob({
    owner: "acme",
    repo: "app",
    labels: ["linux"],
  });
  const kinds: string[] = [];
  const drain = async () => {
    for (let polled = await poll(session); polled.status === 200;) {
      kinds.push(
        `${polled.jobs[0]!.messageType}${
          polled.jobs[0]!.result ? `:${polled.jobs[0]!.result}` : ""
        }`,
      );
      await ack(session, polled.message!.messageId);
      polled = await poll(session);
    }
  };
  await drain();
  for (let i = 0; i < 4; i++) gh.expireAssignment(job.id);
  await drain();
  assert.deepEqual(kinds, [
    "JobAssigned",
    ...Array(3).fill(["JobCompleted:canceled", "JobAssigned"]).flat(),
    "JobCompleted:canceled",
  ]);
  assert.equal(gh.jobScaleSet(job.id), undefined);
  assert.equal(gh.job(job.id)?.status, "queued");
  assert.throws(() => gh.expireAssignment(job.id), /not waiting/);
});

Deno.test("failScaleSetNext plays faults: a 503 in text, a slow answer, a 200 with an empty body", async () => {
  await using gh = await start({ pollWindowMs: 100 });
  const admin = await connect(gh);
  const id = await createScaleSet(admin, "linux");
  const session = await openSession(admin, id);
  gh.failScaleSetNext(
    1,
    { status: 503, body: "busy", headers: { "content-type": "text/plain" } },
    (r) => r.path.includes("/runnergroups"),
  );
  gh.failScaleSetNext(
    1,
    { status: 200, body: "" },
    (r) => r.method === "GET" && r.path.includes("/msgqueue/"),
  );
  gh.failScaleSetNext(
    1,
    { status: 500, delayMs: 300 },
    (r) => r.path === "/actions/runner-registration",
  );

  assert.equal((await call(admin, "GET", SCALE_SETS)).status, 200);
  const groups = "_apis/runtime/runnergroups/?groupName=Default";
  const failed = await fetch(
    new URL(`${groups}&api-version=${API_VERSION}`, admin.url),
    { headers: { authorization: `Bearer ${admin.token}` } },
  );
  assert.deepEqual(
    [failed.status, failed.headers.get("content-type"), await failed.text()],
    [503, "text/plain", "busy"],
  );
  assert.ok(failed.headers.get("activityid"));
  assert.equal((await call(admin, "GET", groups)).status, 200);
  const empty = await fetch(session.messageQueueUrl, {
    headers: {
      authorization: `Bearer ${session.messageQueueAccessToken}`,
      accept: `application/json; api-version=${API_VERSION}`,
    },
  });
  assert.deepEqual([empty.status, await empty.text()], [200, ""]);
  assert.equal((await poll(session)).status, 202);
  const before = Date.now();
  assert.equal(
    (await runnerRegistration(gh, "X", "https://github.com/acme")).status,
    500,
  );
  assert.ok(Date.now() - before >= 280);
  assert.deepEqual(
    gh.scaleSetRequests.slice(-5).map((r) => r.status),
    [503, 200, 200, 202, 500],
  );
});

Deno.test("close() ends a blocked poll at once, and a client that leaves breaks nothing", async () => {
  const gh = await start({ bom: true });
  try {
    const admin = await connect(gh);
    const id = await createScaleSet(admin, "linux");
    const session = await openSession(admin, id);

    const raw = await fetch(
      `${admin.url}${SCALE_SETS}/${id}?api-version=${API_VERSION}`,
      { headers: { authorization: `Bearer ${admin.token}` } },
    );
    // Response.text() would drop the byte order mark, as a decoder does.
    const bytes = new Uint8Array(await raw.arrayBuffer());
    assert.deepEqual([...bytes.slice(0, 4)], [0xef, 0xbb, 0xbf, 0x7b]);

    const leaving = new AbortController();
    const left = poll(session, { signal: leaving.signal });
    await new Promise((resolve) => setTimeout(resolve, 100));
    leaving.abort();
    await assert.rejects(left);
    const job = await gh.queueJob({
      owner: "acme",
      repo: "app",
      labels: ["linux"],
    });
    const polled = await poll(session);
    assert.equal(only(polled, "JobAssigned").jobId, String(job.id));

    const blocked = poll(session, { last: 1 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const before = Date.now();
    await gh.close();
    assert.equal((await blocked).status, 202);
    assert.ok(Date.now() - before < 2_000, `${Date.now() - before} ms`);
  } finally {
    await gh.close();
  }
});
