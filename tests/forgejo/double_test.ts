/**
 * The Forgejo double over real HTTP with plain fetch: each behaviour of
 * research note §1–§3 it promises, its faults and error answers.
 */

import assert from "node:assert/strict";
import { ForgejoDouble } from "./double.ts";
import {
  STANDIN_RUNNER_PATH,
  STANDIN_RUNNER_VERSION,
  standinRunnerSha256,
} from "./standin.ts";

type Json = Record<string, unknown>;

interface Answer {
  readonly status: number;
  readonly json: unknown;
  readonly text: string;
  readonly headers: Headers;
}

interface CallOptions {
  readonly auth?: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/** Raw fetch, body read, so tests see exactly what the double sends. */
async function call(
  double: ForgejoDouble,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.auth) headers.authorization = options.auth;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${double.url}${path}`, {
    method,
    headers,
    ...(options.body === undefined
      ? {}
      : { body: JSON.stringify(options.body) }),
  });
  const text = await response.text();
  let json: unknown = undefined;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text, headers: response.headers };
}

const token = (secret: string) => `token ${secret}`;
const basic = (user: string, password: string) =>
  `Basic ${btoa(`${user}:${password}`)}`;

/** Guest calls as the stand-in makes them. */
function guest(
  double: ForgejoDouble,
  path: string,
  runner: { uuid: string; token: string },
  body = "",
): Promise<Answer> {
  return fetch(`${double.url}/_guest/forgejo/${path}`, {
    method: "POST",
    headers: {
      "x-runner-uuid": runner.uuid,
      "x-runner-token-b64": btoa(runner.token),
    },
    body,
  }).then(async (r) => ({
    status: r.status,
    json: undefined,
    text: await r.text(),
    headers: r.headers,
  }));
}

/** alice owns alice/app and the org team (with team/tool); root is admin. */
async function world(options: { now?: () => number } = {}) {
  const double = await ForgejoDouble.start(options);
  double.addUser("root", { admin: true, password: "root-password" });
  double.addUser("alice", { password: "alice-password" });
  double.addUser("bob", { password: "bob-password" });
  double.addOrg("team", ["alice"]);
  double.addRepo("alice", "app");
  double.addRepo("team", "tool");
  const alice = double.addToken("alice", [
    "write:repository",
    "write:organization",
    "read:user",
  ]);
  const admin = double.addToken("root", ["all"]);
  return { double, alice, admin };
}

const JOBS = "/api/v1/repos/alice/app/actions/runners/jobs";
const RUNNERS = "/api/v1/repos/alice/app/actions/runners";

Deno.test("ForgejoDouble answers /version, /user and /repositories/{id}", async () => {
  const { double, alice } = await world();
  await using _ = double;
  const version = await call(double, "GET", "/api/v1/version");
  assert.deepEqual([version.status, version.json], [200, {
    version: "15.0.3",
  }]);
  const user = await call(double, "GET", "/api/v1/user", {
    auth: token(alice),
  });
  assert.equal((user.json as Json).login, "alice");
  assert.equal((user.json as Json).is_admin, false);
  const anonymous = await call(double, "GET", "/api/v1/user");
  assert.equal(anonymous.status, 401);
  const { id } = double.addRepo("team", "other");
  const repo = await call(double, "GET", `/api/v1/repositories/${id}`, {
    auth: token(alice),
  });
  assert.equal(repo.status, 200);
  const body = repo.json as Json;
  assert.equal(body.full_name, "team/other");
  assert.equal((body.owner as Json).login, "team");
  assert.equal(
    (await call(double, "GET", "/api/v1/repositories/999")).status,
    404,
  );
});

Deno.test("ForgejoDouble authenticates by token, Bearer, Basic password and Basic token", async () => {
  const { double, alice } = await world();
  await using _ = double;
  const as = async (auth: string) =>
    (await call(double, "GET", "/api/v1/user", { auth })).status;
  assert.equal(await as(`token ${alice}`), 200);
  assert.equal(await as(`Bearer ${alice}`), 200);
  assert.equal(await as(basic("alice", "alice-password")), 200);
  // A token as the Basic password is token auth, as its own user.
  assert.equal(await as(basic("whoever", alice)), 200);
  assert.equal(await as(basic(alice, "")), 200);
  const bad = await call(double, "GET", "/api/v1/user", {
    auth: basic("alice", "wrong"),
  });
  assert.equal(bad.status, 401);
  assert.deepEqual(Object.keys(bad.json as Json).sort(), ["message", "url"]);
  assert.equal(await as("token 0000000000000000000000000000000000000000"), 401);
  assert.deepEqual(
    double.requests.map((r) => r.auth),
    [
      "token",
      "token",
      "basic-password",
      "basic-token",
      "basic-token",
      "basic-password",
      "token",
    ],
  );
  assert.deepEqual(double.requests[0], {
    method: "GET",
    path: "/api/v1/user",
    query: {},
    status: 200,
    operationId: "userGetCurrent",
    auth: "token",
  });
});

Deno.test("ForgejoDouble checks token scopes per route category and method", async () => {
  const { double } = await world();
  await using _ = double;
  const read = double.addToken("alice", ["read:repository"]);
  const user = double.addToken("alice", ["read:user"]);
  const all = double.addToken("alice", ["all"]);
  assert.equal(
    (await call(double, "GET", JOBS, { auth: token(read) })).status,
    200,
  );
  const denied = await call(double, "POST", RUNNERS, {
    auth: token(read),
    body: { name: "r" },
  });
  assert.equal(denied.status, 403);
  assert.match(
    (denied.json as Json).message as string,
    /required scope\(s\): \[write:repository\]/,
  );
  assert.equal(
    (await call(double, "GET", JOBS, { auth: token(user) })).status,
    403,
  );
  assert.equal(
    (await call(double, "GET", JOBS, { auth: token(all) })).status,
    200,
  );
  const org = "/api/v1/orgs/team/actions/runners/jobs";
  assert.equal(
    (await call(double, "GET", org, { auth: token(read) })).status,
    403,
  );
  // A password login is not limited by scopes; /version needs none.
  assert.equal(
    (await call(double, "GET", org, { auth: basic("alice", "alice-password") }))
      .status,
    200,
  );
  const pkg = double.addToken("alice", ["write:package"]);
  assert.equal(
    (await call(double, "GET", "/api/v1/version", { auth: token(pkg) })).status,
    200,
  );
  assert.equal(
    (await call(double, "GET", "/api/v1/user", { auth: token(pkg) })).status,
    403,
  );
});

Deno.test("ForgejoDouble lets only owners and site admins manage a scope's runners", async () => {
  const { double, admin } = await world();
  await using _ = double;
  const bob = double.addToken("bob", ["all"]);
  for (const path of [JOBS, "/api/v1/orgs/team/actions/runners"]) {
    const answer = await call(double, "GET", path, { auth: token(bob) });
    assert.equal(answer.status, 403, path);
    assert.equal(
      (await call(double, "GET", path, { auth: token(admin) })).status,
      200,
    );
    assert.equal((await call(double, "GET", path)).status, 401, path);
  }
  // alice owns team, so team's repositories are hers to manage too.
  const alice = double.addToken("alice", ["read:repository"]);
  assert.equal(
    (await call(double, "GET", "/api/v1/repos/team/tool/actions/runners/jobs", {
      auth: token(alice),
    })).status,
    200,
  );
  assert.equal(
    (await call(
      double,
      "GET",
      "/api/v1/repos/alice/nope/actions/runners/jobs",
      {
        auth: token(admin),
      },
    )).status,
    404,
  );
  assert.equal(
    (await call(double, "GET", "/api/v1/orgs/alice/actions/runners", {
      auth: token(admin),
    })).status,
    404,
  );
});

Deno.test("ForgejoDouble lists waiting and running jobs, null when none, filtered by labels", async () => {
  const { double, alice } = await world();
  await using _ = double;
  const list = async (path: string) => {
    const answer = await call(double, "GET", path, { auth: token(alice) });
    assert.equal(answer.status, 200);
    return answer;
  };
  const empty = await list(JOBS);
  assert.equal(empty.text, "null");
  const a = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
  const b = double.queueJob({
    owner: "alice",
    repo: "app",
    runsOn: ["x", "big"],
    name: "build",
  });
  const c = double.queueJob({ owner: "alice", repo: "app", runsOn: [] });
  const d = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
  double.cancelJob(d.id);
  const [first] = (await list(JOBS)).json as Json[];
  assert.deepEqual(first, {
    id: a.id,
    attempt: 1,
    handle: a.handle,
    repo_id: 1,
    owner_id: 2, // alice: root is account 1
    name: "job",
    needs: null,
    runs_on: ["x"],
    task_id: 0,
    status: "waiting",
  });
  const ids = async (query: string) =>
    ((await list(`${JOBS}${query}`)).json as Json[] | null ?? []).map((j) =>
      j.id
    );
  assert.deepEqual(await ids(""), [a.id, b.id, c.id]);
  assert.deepEqual(await ids("?labels="), [c.id]);
  assert.deepEqual(await ids("?labels=x"), [a.id, c.id]);
  assert.deepEqual(await ids("?labels=x,big,other"), [a.id, b.id, c.id]);
  // The organization's listing covers its repositories only.
  const t = double.queueJob({ owner: "team", repo: "tool", runsOn: ["x"] });
  const org = await list("/api/v1/orgs/team/actions/runners/jobs");
  assert.deepEqual((org.json as Json[]).map((j) => j.id), [t.id]);
});

Deno.test("ForgejoDouble registers runners without labels, lists them by page and deletes them", async () => {
  const { double, alice } = await world();
  await using _ = double;
  const made = await call(double, "POST", RUNNERS, {
    auth: token(alice),
    body: { name: "fr-1", ephemeral: true },
  });
  assert.equal(made.status, 201);
  const runner = made.json as { id: number; uuid: string; token: string };
  assert.deepEqual(Object.keys(runner).sort(), ["id", "token", "uuid"]);
  assert.match(runner.token, /^[0-9a-f]{40}$/);
  const [view] = double.runners();
  assert.deepEqual(view, {
    id: runner.id,
    uuid: runner.uuid,
    name: "fr-1",
    scope: "repo:alice/app",
    ephemeral: true,
    labels: [],
    status: "offline",
  });
  const one = await call(double, "GET", `${RUNNERS}/${runner.id}`, {
    auth: token(alice),
  });
  assert.equal((one.json as Json).status, "offline");
  assert.equal((one.json as Json).repo_id, 1);
  // Someone else's runner is not found here.
  assert.equal(
    (await call(
      double,
      "GET",
      `/api/v1/orgs/team/actions/runners/${runner.id}`,
      {
        auth: token(alice),
      },
    )).status,
    404,
  );
  for (let i = 2; i <= 61; i++) {
    await call(double, "POST", RUNNERS, {
      auth: token(alice),
      body: { name: `fr-${i}` },
    });
  }
  const page1 = await call(double, "GET", RUNNERS, { auth: token(alice) });
  assert.equal((page1.json as Json[]).length, 30);
  assert.equal(page1.headers.get("x-total-count"), "61");
  assert.match(page1.headers.get("link")!, /[?&]page=2>; rel="next"/);
  const capped = await call(double, "GET", `${RUNNERS}?limit=100&page=2`, {
    auth: token(alice),
  });
  assert.equal((capped.json as Json[]).length, 11);
  assert.doesNotMatch(capped.headers.get("link")!, /rel="next"/);
  const deleted = await call(double, "DELETE", `${RUNNERS}/${runner.id}`, {
    auth: token(alice),
  });
  assert.deepEqual([deleted.status, deleted.text], [204, ""]);
  const again = await call(double, "DELETE", `${RUNNERS}/${runner.id}`, {
    auth: token(alice),
  });
  assert.equal(again.status, 404);
  assert.equal((again.json as Json).message, "The target couldn't be found.");
  const nameless = await call(double, "POST", RUNNERS, {
    auth: token(alice),
    body: {},
  });
  assert.equal(nameless.status, 422);
  double.violations.length = 0; // the nameless body broke the schema, on purpose
});

Deno.test("ForgejoDouble records a registration with labels as a swagger violation", async () => {
  const { double, alice } = await world();
  const made = await call(double, "POST", RUNNERS, {
    auth: token(alice),
    body: { name: "fr-1", labels: ["x"] },
  });
  assert.equal(made.status, 201);
  assert.deepEqual(double.violations, [
    "POST /repos/{owner}/{repo}/actions/runners (registerRepoRunner) request: " +
    "body must NOT have additional properties (labels)",
  ]);
  await assert.rejects(double.close(), /1 violation/);
});

Deno.test("ForgejoDouble hands a job to the runner that declared its labels, then deletes the ephemeral runner", async () => {
  let now = 1_000_000;
  const { double, alice } = await world({ now: () => now });
  await using _ = double;
  const job = double.queueJob({
    owner: "alice",
    repo: "app",
    runsOn: ["x", "big"],
    script: "echo hi",
  });
  const made = await call(double, "POST", RUNNERS, {
    auth: token(alice),
    body: { name: "fr-1", ephemeral: true },
  });
  const runner = made.json as { id: number; uuid: string; token: string };
  const status = () => double.runners()[0]?.status;
  assert.equal((await guest(double, "declare", runner, "x")).status, 200);
  assert.equal(status(), "idle");
  // Not every runs-on label declared: no task.
  assert.equal(
    (await guest(double, `fetch?handle=${job.handle}`, runner)).status,
    204,
  );
  await guest(double, "declare", runner, "x,big");
  assert.deepEqual(double.runners()[0]?.labels, ["x", "big"]);
  assert.equal((await guest(double, "fetch?handle=nope", runner)).status, 204);
  const task = await guest(double, `fetch?handle=${job.handle}`, runner);
  assert.deepEqual([task.status, task.text], [200, "echo hi"]);
  assert.equal(status(), "active");
  const running = double.job(job.id)!;
  assert.equal(running.status, "running");
  assert.equal(running.runnerId, runner.id);
  assert.ok(running.taskId > 0);
  const listed = await call(double, "GET", JOBS, { auth: token(alice) });
  assert.equal((listed.json as Json[])[0]!.status, "running");
  assert.equal((listed.json as Json[])[0]!.task_id, running.taskId);
  now += 61_000;
  assert.equal(status(), "offline");
  assert.equal((await guest(double, "finish?exit=3", runner)).status, 200);
  assert.equal(double.job(job.id)!.status, "failure");
  assert.equal(double.job(job.id)!.exitCode, 3);
  assert.deepEqual(double.runners(), []);
  assert.equal((await guest(double, "declare", runner, "x")).status, 401);
  assert.equal(
    (await call(double, "DELETE", `${RUNNERS}/${runner.id}`, {
      auth: token(alice),
    }))
      .status,
    404,
  );
  assert.equal(
    (await call(double, "GET", JOBS, { auth: token(alice) })).text,
    "null",
  );
});

Deno.test("ForgejoDouble reruns with a new handle and cancels a running job with its runner", async () => {
  const { double, alice } = await world();
  await using _ = double;
  const job = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
  assert.throws(() => double.rerunJob(job.id), /waiting/);
  const made = await call(double, "POST", RUNNERS, {
    auth: token(alice),
    body: { name: "fr-1", ephemeral: true },
  });
  const runner = made.json as { id: number; uuid: string; token: string };
  await guest(double, "declare", runner, "x");
  assert.equal((await guest(double, "fetch", runner)).status, 200);
  double.cancelJob(job.id);
  assert.equal(double.job(job.id)!.status, "cancelled");
  assert.deepEqual(double.runners(), []);
  assert.equal((await guest(double, "finish?exit=0", runner)).status, 401);
  const again = double.rerunJob(job.id);
  assert.equal(again.id, job.id);
  assert.equal(again.attempt, 2);
  assert.notEqual(again.handle, job.handle);
  assert.equal(double.job(job.id)!.status, "waiting");
  assert.equal(double.job(job.id)!.taskId, 0);
  // The old handle is no longer a job's.
  const second = (await call(double, "POST", RUNNERS, {
    auth: token(alice),
    body: { name: "fr-2", ephemeral: true },
  })).json as { uuid: string; token: string };
  await guest(double, "declare", second, "x");
  assert.equal(
    (await guest(double, `fetch?handle=${job.handle}`, second)).status,
    204,
  );
  assert.equal(
    (await guest(double, `fetch?handle=${again.handle}`, second)).status,
    200,
  );
  // An ephemeral runner takes one task only, even after it ended.
  await guest(double, "finish?exit=0", second);
  assert.equal(double.job(job.id)!.status, "success");
});

Deno.test("ForgejoDouble refuses a runner token with a trailing newline", async () => {
  const { double, alice } = await world();
  await using _ = double;
  const runner = (await call(double, "POST", RUNNERS, {
    auth: token(alice),
    body: { name: "fr-1" },
  })).json as { uuid: string; token: string };
  const answer = await guest(double, "declare", {
    uuid: runner.uuid,
    token: `${runner.token}\n`,
  }, "x");
  assert.deepEqual([answer.status, answer.text], [
    401,
    "unregistered runner\n",
  ]);
  assert.equal(
    (await guest(double, "declare", { ...runner, uuid: crypto.randomUUID() }))
      .status,
    401,
  );
});

Deno.test("ForgejoDouble makes users that must change their password unless told otherwise", async () => {
  const { double, admin } = await world();
  await using _ = double;
  const create = (body: Json, auth = token(admin)) =>
    call(double, "POST", "/api/v1/admin/users", { auth, body });
  const made = await create({
    username: "ci",
    email: "ci@example.com",
    password: "long-enough-1",
  });
  assert.equal(made.status, 201);
  assert.equal((made.json as Json).login, "ci");
  assert.deepEqual(double.users().find((u) => u.login === "ci"), {
    login: "ci",
    admin: false,
    mustChangePassword: true,
    email: "ci@example.com",
    fullName: "",
    createdBy: "root",
  });
  const blocked = await call(double, "GET", "/api/v1/user", {
    auth: basic("ci", "long-enough-1"),
  });
  assert.equal(blocked.status, 403);
  assert.match(
    (blocked.json as Json).message as string,
    /^You must change your password/,
  );
  assert.equal(
    (await create({
      username: "ci",
      email: "other@example.com",
      password: "long-enough-1",
    }))
      .status,
    422,
  );
  const alice = double.addToken("alice", ["all"]);
  assert.equal(
    (await create({
      username: "x",
      email: "x@example.com",
      password: "long-enough-1",
    }, token(alice)))
      .status,
    403,
  );
  const edited = await call(double, "PATCH", "/api/v1/admin/users/ci", {
    auth: token(admin),
    body: { password: "another-one-2", must_change_password: false },
  });
  assert.equal(edited.status, 200);
  assert.equal(
    (await call(double, "GET", "/api/v1/user", {
      auth: basic("ci", "another-one-2"),
    }))
      .status,
    200,
  );
  const listed = await call(double, "GET", "/api/v1/admin/users?limit=1", {
    auth: token(admin),
  });
  assert.equal((listed.json as Json[]).length, 1);
  assert.equal(listed.headers.get("x-total-count"), "4");
  assert.equal(
    (await call(double, "PATCH", "/api/v1/admin/users/nobody", {
      auth: token(admin),
      body: {},
    })).status,
    404,
  );
  double.addUser("fresh", {
    password: "fresh-password",
    mustChangePassword: true,
  });
  const fresh = double.addToken("fresh", ["all"]);
  assert.equal(
    (await call(double, "GET", "/api/v1/version", { auth: token(fresh) }))
      .status,
    403,
  );
});

Deno.test("ForgejoDouble makes and deletes tokens for a password login only", async () => {
  const { double, admin } = await world();
  await using _ = double;
  const tokens = "/api/v1/users/alice/tokens";
  const make = (auth: string, name = "orch-1", scopes = ["write:package"]) =>
    call(double, "POST", tokens, { auth, body: { name, scopes } });
  const made = await make(basic("alice", "alice-password"));
  assert.equal(made.status, 201);
  const body = made.json as Json;
  assert.match(body.sha1 as string, /^[0-9a-f]{40}$/);
  assert.equal(body.token_last_eight, (body.sha1 as string).slice(-8));
  assert.deepEqual(body.scopes, ["write:package"]);
  // Any token, even an admin's as the Basic password or with Sudo: 401.
  for (
    const auth of [
      token(admin),
      basic("root", admin),
    ]
  ) {
    const refused = await make(auth, "orch-2");
    assert.equal(refused.status, 401);
    assert.equal((refused.json as Json).message, "auth method not allowed");
  }
  const sudo = await call(double, "POST", tokens, {
    auth: token(admin),
    body: { name: "orch-3", scopes: ["write:package"] },
    headers: { sudo: "alice" },
  });
  assert.equal(sudo.status, 401);
  // A site admin's password may make tokens for someone else.
  assert.equal(
    (await make(basic("root", "root-password"), "orch-4")).status,
    201,
  );
  assert.equal(
    (await make(basic("bob", "bob-password"), "orch-5")).status,
    403,
  );
  const reused = await make(basic("alice", "alice-password"));
  assert.deepEqual(
    [reused.status, (reused.json as Json).message],
    [400, "access token name has been used already"],
  );
  const bad = await make(basic("alice", "alice-password"), "bad", [
    "write:admin_users",
  ]);
  assert.equal(bad.status, 400);
  // sudo is not a scope: skipped.
  const sudoScope = await make(basic("alice", "alice-password"), "s", [
    "sudo",
    "read:user",
  ]);
  assert.deepEqual((sudoScope.json as Json).scopes, ["read:user"]);
  // Listing works with an admin token (read:user), without the secrets.
  const reader = double.addToken("root", ["read:user"]);
  const list = await call(double, "GET", tokens, { auth: token(reader) });
  assert.equal(list.status, 200);
  assert.deepEqual((list.json as Json[]).map((t) => t.name), [
    "token-1",
    "orch-1",
    "orch-4",
    "s",
  ]);
  assert.ok((list.json as Json[]).every((t) => !("sha1" in t)));
  assert.equal(
    (await call(double, "GET", "/api/v1/users/nobody/tokens", {
      auth: token(reader),
    }))
      .status,
    404,
  );
  // Deleting: by name or id, Basic password only, 404 when unknown.
  const del = (key: string, auth = basic("alice", "alice-password")) =>
    call(double, "DELETE", `${tokens}/${key}`, { auth });
  assert.equal((await del("orch-1", token(admin))).status, 401);
  assert.equal((await del("orch-1")).status, 204);
  assert.equal((await del("orch-1")).status, 404);
  const id = double.tokensOf("alice").find((t) => t.name === "orch-4")!.id;
  assert.equal((await del(String(id))).status, 204);
  assert.deepEqual(double.tokensOf("alice").map((t) => t.name), [
    "token-1",
    "s",
  ]);
});

Deno.test("ForgejoDouble's package registry takes uploads from the owner's write:package token", async () => {
  const { double } = await world();
  await using _ = double;
  const put = (path: string, auth?: string) =>
    call(double, "PUT", `/api/packages/${path}`, {
      ...(auth ? { auth } : {}),
      body: "bits",
    });
  const pkg = double.addToken("alice", ["write:package"]);
  const uploaded = await put(
    "alice/generic/fw/1.0/fw.bin",
    basic("alice", pkg),
  );
  assert.deepEqual([uploaded.status, uploaded.text], [201, ""]);
  assert.deepEqual(double.packageUploads, [{
    owner: "alice",
    package: "fw",
    version: "1.0",
    file: "fw.bin",
    user: "alice",
    bytes: 6,
  }]);
  assert.equal(
    (await put("alice/generic/fw/1.0/fw.bin", basic("alice", pkg))).status,
    409,
  );
  assert.equal(
    (await put("alice/generic/fw/1.0/x", basic("alice", "nope"))).status,
    401,
  );
  // Forgejo answers 401 (not 403) where the token may not write.
  const read = double.addToken("alice", ["read:package"]);
  const denied = await put("alice/generic/fw/1.0/y", basic("alice", read));
  assert.equal(denied.status, 401);
  assert.match(denied.headers.get("www-authenticate")!, /Basic realm=/);
  const bob = double.addToken("bob", ["write:package"]);
  assert.equal(
    (await put("alice/generic/fw/1.0/z", basic("bob", bob))).status,
    401,
  );
  assert.equal((await put("alice/generic/fw/1.0/z")).status, 401);
  assert.equal(double.packageUploads.length, 1);
  assert.deepEqual(
    double.requests.map((r) => [r.path, r.status]).slice(0, 2),
    [["/api/packages/alice/generic/fw/1.0/fw.bin", 201], [
      "/api/packages/alice/generic/fw/1.0/fw.bin",
      409,
    ]],
  );
});

Deno.test("ForgejoDouble.failNext() answers matching requests with the fault, then normally", async () => {
  const { double, alice } = await world();
  await using _ = double;
  double.failNext({ method: "GET", path: /\/actions\/runners\/jobs$/ }, {
    status: 502,
    times: 2,
  });
  double.failNext({ path: /\/version$/ }, {
    status: 503,
    body: { message: "busy" },
  });
  const post = await call(double, "POST", RUNNERS, {
    auth: token(alice),
    body: { name: "r" },
  });
  assert.equal(post.status, 201);
  for (const expected of [502, 502, 200]) {
    const answer = await call(double, "GET", JOBS, { auth: token(alice) });
    assert.equal(answer.status, expected);
  }
  const version = await call(double, "GET", "/api/v1/version");
  assert.deepEqual([version.status, version.json], [503, { message: "busy" }]);
  assert.equal((await call(double, "GET", "/api/v1/version")).status, 200);
  assert.deepEqual(
    double.requests.map((r) => r.status),
    [201, 502, 502, 200, 503, 200],
  );
});

Deno.test("ForgejoDouble answers 404 off the description and 501, with a violation, where it is not implemented", async () => {
  const { double, alice } = await world();
  const unknown = await call(double, "GET", "/api/v1/nothing/here", {
    auth: token(alice),
  });
  assert.equal(unknown.status, 404);
  assert.equal((unknown.json as Json).message, "The target couldn't be found.");
  assert.equal((await call(double, "GET", "/elsewhere")).status, 404);
  assert.deepEqual(double.violations, []);
  const issues = await call(double, "GET", "/api/v1/repos/alice/app/issues", {
    auth: token(alice),
  });
  assert.equal(issues.status, 501);
  assert.deepEqual(double.violations, [
    "GET /repos/{owner}/{repo}/issues (issueListIssues): not implemented by the Forgejo double (501)",
  ]);
  await assert.rejects(double.close(), /not implemented/);
});

Deno.test("ForgejoDouble as Forgejo 14 has no runner API and no handles", async () => {
  const double = await ForgejoDouble.start({ version: "14.0.5" });
  await using _ = double;
  double.addUser("alice");
  double.addRepo("alice", "app");
  const alice = double.addToken("alice", ["all"]);
  const version = await call(double, "GET", "/api/v1/version");
  assert.deepEqual(version.json, { version: "14.0.5" });
  const register = await call(double, "POST", RUNNERS, {
    auth: token(alice),
    body: { name: "r", ephemeral: true },
  });
  assert.equal(register.status, 404);
  double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
  const jobs = await call(double, "GET", JOBS, { auth: token(alice) });
  const [job] = jobs.json as Json[];
  assert.equal("handle" in job!, false);
  assert.equal("attempt" in job!, false);
});

Deno.test("ForgejoDouble serves the runner stand-in for download", async () => {
  const { double } = await world();
  await using _ = double;
  const v = STANDIN_RUNNER_VERSION;
  const response = await fetch(
    `${double.url}/_guest/forgejo/runner/v${v}/forgejo-runner-${v}-linux-amd64`,
  );
  const bytes = new Uint8Array(await response.arrayBuffer());
  assert.equal(response.status, 200);
  assert.deepEqual(bytes, await Deno.readFile(STANDIN_RUNNER_PATH));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  assert.equal(
    Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
    await standinRunnerSha256(),
  );
  const other = await fetch(
    `${double.url}/_guest/forgejo/runner/v1.0.0/forgejo-runner-1.0.0-linux-amd64`,
  );
  await other.body?.cancel();
  assert.equal(other.status, 404);
  assert.deepEqual(double.requests, []);
});
