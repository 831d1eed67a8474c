/**
 * ForgejoForge against the Forgejo double over real HTTP: every request is
 * checked against Forgejo 15.0.3's API description (the double's
 * violations fail the test at close), and the double answers as Forgejo's
 * sources say (`null` for an empty queue, Basic auth only for tokens, 403
 * while a password must change, …).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ciUserName,
  type ForgejoConfig,
  type Scope,
} from "../../config/mod.ts";
import { Secret } from "../../log/mod.ts";
import { ForgejoDouble } from "../../../tests/forgejo/mod.ts";
import { withTempDir } from "../../../tests/temp.ts";
import { ForgeError, ForgeSetupError, type ScopeNeeds } from "../forge.ts";
import { ForgejoForge } from "./forgejo_forge.ts";

const REPO: Scope = {
  kind: "repository",
  owner: "alice",
  repo: "app",
  forge: "codeberg",
};
const ORG: Scope = { kind: "organization", org: "team", forge: "codeberg" };
const ADMIN_SCOPES = [
  "write:repository",
  "write:organization",
  "write:admin",
  "read:user",
];

function needs(scope: Scope, packageToken = false): ScopeNeeds {
  return { scope, runnerGroups: [], repositories: undefined, packageToken };
}

interface Setup {
  readonly double: ForgejoDouble;
  readonly forge: () => ForgejoForge;
  readonly stateDir: string;
}

/** A double with alice/app, team/tool and an admin; forges made on it. */
async function withForge(
  body: (setup: Setup) => Promise<void>,
  scopes: readonly string[] = ADMIN_SCOPES,
): Promise<void> {
  await withTempDir(async (dir) => {
    await using double = await ForgejoDouble.start();
    double.addUser("root", { admin: true });
    double.addUser("alice");
    double.addOrg("team", ["alice"]);
    double.addRepo("alice", "app");
    double.addRepo("team", "tool");
    const token = new Secret(double.addToken("root", scopes));
    const stateDir = join(dir, "forgejo/codeberg");
    const config: ForgejoConfig = {
      name: "codeberg",
      url: double.url,
      guestUrl: "http://10.0.2.100:3000",
      tokenFile: "/unused",
      pollingInterval: 1_000,
      janitorInterval: 1_000,
      requestTimeout: 5_000,
    };
    await body({
      double,
      stateDir,
      forge: () =>
        new ForgejoForge({ config, token, stateDir, retryDelays: [10, 10] }),
    });
    assert.deepEqual(double.violations, []);
  });
}

Deno.test("ForgejoForge.listJobs() reports waiting and running attempts by handle, the empty queue too", async () => {
  await withForge(async ({ double, forge }) => {
    const f = forge();
    await f.connect([needs(REPO), needs(ORG)]);
    assert.deepEqual(await f.listJobs(REPO), []);
    const a = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
    const b = double.queueJob({
      owner: "team",
      repo: "tool",
      runsOn: ["debian", "big"],
    });
    assert.deepEqual(await f.listJobs(REPO), [{
      id: a.id,
      forge: "codeberg",
      handle: a.handle,
      owner: "alice",
      repo: "app",
      status: "queued",
      labels: ["x"],
      runnerName: null,
    }]);
    // An organization's listing names repositories by id: looked up once.
    const jobs = await f.listJobs(ORG);
    assert.deepEqual(
      jobs.map((j) => [j.owner, j.repo, j.handle, j.labels]),
      [["team", "tool", b.handle, ["debian", "big"]]],
    );
    await f.listJobs(ORG);
    assert.equal(
      double.requests.filter((r) => r.path.startsWith("/api/v1/repositories/"))
        .length,
      1,
    );
    // A re-run keeps the id and changes the handle.
    double.cancelJob(a.id);
    assert.deepEqual(await f.listJobs(REPO), []);
    const again = double.rerunJob(a.id);
    assert.notEqual(again.handle, a.handle);
    assert.deepEqual(
      (await f.listJobs(REPO)).map((j) => [j.id, j.handle]),
      [[a.id, again.handle]],
    );
  });
});

Deno.test("ForgejoForge registers an ephemeral runner per job, lists it and deletes it (a runner already gone is fine)", async () => {
  await withForge(async ({ double, forge }) => {
    const f = forge();
    await f.connect([needs(REPO)]);
    const job = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
    await assert.rejects(
      f.registerRunner(REPO, "forrest-x-1", ["x"], undefined),
      ForgeError,
    );
    const runner = await f.registerRunner(
      REPO,
      "forrest-x-1",
      ["self-hosted", "forrest", "x"],
      undefined,
      { handle: job.handle, repo: { owner: "alice", repo: "app" } },
    );
    const [made] = double.runners();
    assert.equal(made!.id, runner.id);
    assert.ok(made!.ephemeral);
    const values = Object.fromEntries(
      Object.entries(runner.identity).map(([k, v]) => [k, v.reveal()]),
    );
    assert.deepEqual(Object.keys(values).sort(), [
      "FORGE_URL",
      "JOB_HANDLE",
      "RUNNER_LABELS",
      "RUNNER_TOKEN",
      "RUNNER_UUID",
    ]);
    assert.equal(values.FORGE_URL, "http://10.0.2.100:3000");
    assert.equal(values.RUNNER_UUID, made!.uuid);
    assert.equal(values.JOB_HANDLE, job.handle);
    assert.equal(values.RUNNER_LABELS, "self-hosted,forrest,x");
    // Never seen by its guest: offline, idle.
    assert.deepEqual(await f.listRunners(REPO), [{
      id: runner.id,
      name: "forrest-x-1",
      online: false,
      busy: false,
    }]);
    await f.deleteRunner(REPO, runner.id);
    assert.deepEqual(double.runners(), []);
    await f.deleteRunner(REPO, runner.id);
  });
});

Deno.test("ForgejoForge.listRunners() reads every page", async () => {
  await withForge(async ({ double, forge }) => {
    const f = forge();
    const job = double.queueJob({ owner: "team", repo: "tool", runsOn: ["x"] });
    for (let i = 0; i < 53; i++) {
      await f.registerRunner(ORG, `forrest-x-${i}`, ["x"], undefined, {
        handle: job.handle,
        repo: { owner: "team", repo: "tool" },
      });
    }
    const names = (await f.listRunners(ORG)).map((r) => r.name);
    assert.equal(names.length, 53);
    assert.equal(new Set(names).size, 53);
  });
});

Deno.test("ForgejoForge.connect() refuses Forgejo before 15 and tokens without the scopes it needs", async () => {
  await withForge(async ({ forge }) => {
    await forge().connect([needs(REPO), needs(ORG)]);
  });
  await withForge(async ({ forge }) => {
    await assert.rejects(
      forge().connect([needs(REPO), needs(ORG)]),
      (error: unknown) => {
        assert.ok(error instanceof ForgeSetupError);
        assert.match(error.message, /repository alice\/app on codeberg: .*403/);
        assert.match(error.message, /organization team on codeberg: .*403/);
        return true;
      },
    );
  }, ["read:user"]);
  await withForge(async ({ forge }) => {
    await forge().connect([needs(REPO)]);
    await assert.rejects(
      forge().connect([needs(REPO, true)]),
      /package_token \(the CI users need a site administrator's token/,
    );
  }, ["write:repository", "read:user"]);
});

Deno.test("ForgejoForge.connect() refuses a Forgejo 14", async () => {
  await withTempDir(async (dir) => {
    await using double = await ForgejoDouble.start({ version: "14.0.5" });
    double.addUser("root", { admin: true });
    const forge = new ForgejoForge({
      config: {
        name: "old",
        url: double.url,
        guestUrl: double.url,
        tokenFile: "/unused",
        pollingInterval: 1_000,
        janitorInterval: 1_000,
        requestTimeout: 5_000,
      },
      token: new Secret(double.addToken("root", ["all"])),
      stateDir: dir,
    });
    await assert.rejects(
      forge.connect([]),
      /is version "14\.0\.5": Forrest needs Forgejo 15 or newer/,
    );
  });
});

Deno.test("ForgejoForge retries a read that failed on the way, never a registration", async () => {
  await withForge(async ({ double, forge }) => {
    const f = forge();
    double.failNext({ method: "GET", path: /\/actions\/runners\/jobs$/ }, {
      status: 502,
      times: 2,
    });
    assert.deepEqual(await f.listJobs(REPO), []);
    double.failNext({ method: "POST", path: /\/actions\/runners$/ }, {
      status: 500,
    });
    const job = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
    await assert.rejects(
      f.registerRunner(REPO, "forrest-x-1", ["x"], undefined, {
        handle: job.handle,
        repo: { owner: "alice", repo: "app" },
      }),
      /POST \/repos\/alice\/app\/actions\/runners: 500/,
    );
    assert.deepEqual(double.runners(), []);
  });
});

Deno.test("ForgejoForge gives each job a package token of the repository's CI user, deleted with its runner", async () => {
  await withForge(async ({ double, forge, stateDir }) => {
    const f = forge();
    await f.connect([needs(REPO, true)]);
    const user = ciUserName("alice", "app");
    const job = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
    const runner = await f.registerRunner(
      REPO,
      "forrest-x-1",
      ["x"],
      undefined,
      {
        handle: job.handle,
        repo: { owner: "alice", repo: "app" },
      },
    );
    assert.equal(runner.identity.PACKAGE_USER?.reveal(), user);
    const token = runner.identity.PACKAGE_TOKEN!.reveal();
    const created = double.users().find((u) => u.login === user)!;
    assert.equal(created.mustChangePassword, false);
    assert.deepEqual(double.tokensOf(user).map((t) => [t.name, t.scopes]), [
      ["forrest-x-1", ["write:package"]],
    ]);
    // The token works where the guest needs it: the package registry.
    const upload = await fetch(
      `${double.url}/api/packages/${user}/generic/fw/1/fw.bin`,
      {
        method: "PUT",
        body: "bits",
        headers: { authorization: `Basic ${btoa(`${user}:${token}`)}` },
      },
    );
    assert.equal(upload.status, 201);
    await upload.body?.cancel();
    // The password is kept for the next start, for Forrest's eyes only.
    const file = join(stateDir, "ci-users.json");
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    assert.match(
      JSON.parse(await Deno.readTextFile(file))[user],
      /^[0-9a-f]{64}$/,
    );
    await f.deleteRunner(REPO, runner.id);
    assert.deepEqual(double.tokensOf(user), []);
    // A second job of the same repository reuses the user.
    await f.registerRunner(REPO, "forrest-x-2", ["x"], undefined, {
      handle: job.handle,
      repo: { owner: "alice", repo: "app" },
    });
    assert.equal(
      double.users().filter((u) => u.login === user).length,
      1,
    );
  });
});

Deno.test("ForgejoForge sweeps the package tokens a crash left, and sets a lost password anew", async () => {
  await withForge(async ({ double, forge, stateDir }) => {
    const user = ciUserName("alice", "app");
    const job = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
    const before = forge();
    await before.connect([needs(REPO, true)]);
    await before.registerRunner(REPO, "forrest-x-1", ["x"], undefined, {
      handle: job.handle,
      repo: { owner: "alice", repo: "app" },
    });
    // A reload connects again: the token of a live runner stays.
    await before.connect([needs(REPO, true)]);
    assert.deepEqual(double.tokensOf(user).map((t) => t.name), [
      "forrest-x-1",
    ]);
    // Not Forrest's: a token the user made by hand stays.
    double.addToken(user, ["read:package"], "by-hand");
    // A new Forrest, after a crash: the leftover token goes at connect.
    const after = forge();
    await after.connect([needs(REPO, true)]);
    assert.deepEqual(double.tokensOf(user).map((t) => t.name), ["by-hand"]);
    // The state file is lost: the next token needs the password set anew.
    await Deno.remove(join(stateDir, "ci-users.json"));
    const third = forge();
    await third.connect([needs(REPO, true)]);
    const runner = await third.registerRunner(
      REPO,
      "forrest-x-2",
      ["x"],
      undefined,
      { handle: job.handle, repo: { owner: "alice", repo: "app" } },
    );
    assert.ok(runner.identity.PACKAGE_TOKEN);
    assert.ok(
      double.requests.some((r) =>
        r.method === "PATCH" && r.path === `/api/v1/admin/users/${user}`
      ),
    );
  });
});

Deno.test("ForgejoForge makes a CI user whose creation failed once the next time, and never takes over another account", async () => {
  await withForge(async ({ double, forge }) => {
    const user = ciUserName("alice", "app");
    const job = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
    const attempt = (f: ForgejoForge, name: string) =>
      f.registerRunner(REPO, name, ["x"], undefined, {
        handle: job.handle,
        repo: { owner: "alice", repo: "app" },
      });
    const f = forge();
    await f.connect([needs(REPO, true)]);
    // The password is kept, then making the user fails: the runner goes.
    double.failNext({ method: "POST", path: /\/admin\/users$/ }, {
      status: 500,
    });
    await assert.rejects(attempt(f, "forrest-x-1"), /POST \/admin\/users: 500/);
    assert.deepEqual(double.runners(), []);
    assert.equal(double.users().some((u) => u.login === user), false);
    // The next job (a new process, too) makes the user with that password.
    const again = forge();
    await again.connect([needs(REPO, true)]);
    const runner = await attempt(again, "forrest-x-2");
    assert.ok(runner.identity.PACKAGE_TOKEN);
    assert.equal(
      double.users().find((u) => u.login === user)?.fullName,
      "Forrest CI user of alice/app",
    );
  });
  await withForge(async ({ double, forge }) => {
    // Somebody's own account carries the CI user's name.
    double.addUser(ciUserName("alice", "app"), { fullName: "Alice's bot" });
    const job = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
    const f = forge();
    await f.connect([needs(REPO, true)]);
    await assert.rejects(
      f.registerRunner(REPO, "forrest-x-1", ["x"], undefined, {
        handle: job.handle,
        repo: { owner: "alice", repo: "app" },
      }),
      /user alice-app-ci exists and is not Forrest's CI user of alice\/app \(its full name is not "Forrest CI user of alice\/app"\): rename or delete it, or leave package_token out/,
    );
    assert.equal(
      double.requests.some((r) => r.method === "PATCH"),
      false,
      "its password was not touched",
    );
    assert.deepEqual(double.runners(), []);
  });
});

Deno.test("ForgejoForge declares the job's labels as the job spells them", async () => {
  await withForge(async ({ double, forge }) => {
    const job = double.queueJob({
      owner: "alice",
      repo: "app",
      runsOn: ["Debian", "big"],
    });
    const runner = await forge().registerRunner(
      REPO,
      "forrest-debian-1",
      ["self-hosted", "forrest", "debian", "big"],
      undefined,
      {
        handle: job.handle,
        repo: { owner: "alice", repo: "app" },
        labels: ["Debian", "big"],
      },
    );
    // Forgejo matches labels exactly: "debian" would never get the task.
    assert.equal(runner.identity.RUNNER_LABELS!.reveal(), "Debian,big");
  });
});
