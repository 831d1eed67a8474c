/**
 * Forgejo jobs in the core (product.md §12): each waiting job attempt gets
 * a machine of its own, made for its handle; a machine whose job is no
 * longer waiting is killed before it takes anything; a running job marks
 * its machine running though Forgejo does not name the runner; the same
 * names on GitHub and on Forgejo are different jobs and scopes.
 */

import assert from "node:assert/strict";
import { parseConfig, tripletName } from "../config/mod.ts";
import { Core, type Decision, DEFAULT_CORE_OPTIONS } from "./core.ts";
import type { JobReport } from "./jobs.ts";

const TOML = `
[host]
base_dir = "/srv/forrest"
ram = "64G"

[forgejo.codeberg]
url = "https://codeberg.example"
token_file = "t"

[repositories.alice.app]
forge = "codeberg"

[repositories.alice.app.machines.build]
base_image = "images/debian.img"

[organizations.team]
forge = "codeberg"

[organizations.team.machines.build]
base_image = "images/debian.img"

[repositories.alice.site.machines.build]
base_image = "images/debian.img"
`;

const config = parseConfig(TOML, { file: "forrest.toml", cwd: "/etc" });

function core(): Core {
  let n = 0;
  return new Core(config, {
    ...DEFAULT_CORE_OPTIONS,
    randomSuffix: () => String(++n),
  });
}

function forgejoJob(
  id: number,
  handle: string,
  status: JobReport["status"],
  repo = { owner: "alice", repo: "app" },
): JobReport {
  return {
    id,
    forge: "codeberg",
    handle,
    ...repo,
    status,
    labels: ["build"],
    runnerName: null,
  };
}

const registers = (decisions: Decision[]) =>
  decisions.flatMap((d) => d.kind === "register" ? [d.machine] : []);
const kills = (decisions: Decision[]) =>
  decisions.flatMap((d) => d.kind === "kill" ? [d.machine] : []);

Deno.test("forgejo: each waiting job gets a machine made for its handle, once", () => {
  const c = core();
  const listing = { forge: "codeberg", owner: "alice", repo: "app" };
  c.pollFinished(
    listing,
    [forgejoJob(1, "h-1", "queued"), forgejoJob(2, "h-2", "queued")],
    0,
    0,
  );
  const made = registers(c.tick(10_000));
  assert.deepEqual(
    made.map((m) => [tripletName(m.triplet), m.forJob?.handle]),
    [["codeberg:alice/app/build", "h-1"], ["codeberg:alice/app/build", "h-2"]],
  );
  // The next poll lists the same jobs: nothing new.
  c.pollFinished(
    listing,
    [forgejoJob(1, "h-1", "queued"), forgejoJob(2, "h-2", "queued")],
    20_000,
    20_000,
  );
  assert.deepEqual(registers(c.tick(30_000)), []);
});

Deno.test("forgejo: a job that stops waiting kills its machine, not the others", () => {
  const c = core();
  const listing = { forge: "codeberg", owner: "alice", repo: "app" };
  c.pollFinished(
    listing,
    [forgejoJob(1, "h-1", "queued"), forgejoJob(2, "h-2", "queued")],
    0,
    0,
  );
  const [first, second] = registers(c.tick(10_000));
  c.registered(first!.id, 11, 10_001);
  c.registered(second!.id, 12, 10_001);
  // Job 1 was cancelled: the next listing has only job 2.
  c.pollFinished(listing, [forgejoJob(2, "h-2", "queued")], 20_000, 20_000);
  const decisions = c.tick(30_000);
  assert.deepEqual(kills(decisions).map((m) => m.forJob?.handle), ["h-1"]);
  assert.deepEqual(registers(decisions), []);
});

Deno.test("forgejo: a running job marks its machine running, found by handle", () => {
  const c = core();
  const listing = { forge: "codeberg", owner: "alice", repo: "app" };
  c.pollFinished(listing, [forgejoJob(1, "h-1", "queued")], 0, 0);
  const first = c.tick(10_000);
  const [machine] = registers(first);
  assert.equal(first.filter((d) => d.kind === "start").length, 1);
  c.registered(machine!.id, 11, 10_001);
  c.pollFinished(
    listing,
    [forgejoJob(1, "h-1", "in_progress")],
    20_000,
    20_000,
  );
  const running = c.machines().find((m) => m.id === machine!.id)!;
  assert.equal(running.state, "running");
  assert.equal(running.jobId, 1);
  assert.ok(running.ranJob);
  // Done: the job leaves the listing; the running machine is not killed.
  c.pollFinished(listing, [], 30_000, 30_000);
  assert.deepEqual(kills(c.tick(40_000)), []);
  assert.deepEqual(c.drainObservations().pickup, [20]);
});

Deno.test("forgejo: a re-run is a new attempt with a new handle and a new machine", () => {
  const c = core();
  const listing = { forge: "codeberg", owner: "alice", repo: "app" };
  c.pollFinished(listing, [forgejoJob(1, "h-1", "in_progress")], 0, 0);
  // Between two polls the job ended and was re-run: same id, new handle.
  c.pollFinished(listing, [forgejoJob(1, "h-2", "queued")], 10_000, 10_000);
  assert.deepEqual(
    registers(c.tick(20_000)).map((m) => m.forJob?.handle),
    ["h-2"],
  );
  assert.deepEqual(c.jobs().map((j) => j.key), ["codeberg:h-2"]);
});

Deno.test("forgejo: an organization's listing covers its repositories, and GitHub's jobs are apart", () => {
  const c = core();
  // Job 7 of GitHub's alice/site and job 7 of Forgejo's team/tool.
  c.jobReported({
    id: 7,
    owner: "alice",
    repo: "site",
    status: "queued",
    labels: ["build"],
    runnerName: null,
  }, 0);
  c.pollFinished(
    { forge: "codeberg", owner: "team" },
    [forgejoJob(7, "h-7", "queued", { owner: "team", repo: "tool" })],
    0,
    0,
  );
  const made = registers(c.tick(10_000));
  assert.deepEqual(
    made.map((m) => [tripletName(m.triplet), m.forJob?.handle]).sort(),
    [
      ["alice/site/build", undefined],
      ["codeberg:orgs/team/build", "h-7"],
    ],
  );
  // The organization's next listing is empty: only its job goes.
  c.pollFinished({ forge: "codeberg", owner: "team" }, [], 20_000, 20_000);
  assert.deepEqual(c.jobs().map((j) => j.key), ["7"]);
  // A GitHub job of the same owner and repository is not Forgejo's.
  assert.equal(
    c.serves({
      id: 8,
      owner: "alice",
      repo: "app",
      status: "queued",
      labels: ["build"],
      runnerName: null,
    }),
    false,
  );
});

Deno.test("forgejo: a machine whose job another runner took is stopped once its runner is still idle a minute on", () => {
  const c = core();
  const listing = { forge: "codeberg", owner: "alice", repo: "app" };
  c.pollFinished(listing, [forgejoJob(1, "h-1", "queued")], 0, 0);
  const [machine] = registers(c.tick(10_000));
  c.registered(machine!.id, 11, 10_001);
  c.tick(10_002);
  const scope = machine!.triplet.scope;
  const idle = [{
    id: 11,
    name: machine!.runnerName,
    online: true,
    busy: false,
  }];
  assert.deepEqual(c.runnersListed(scope, idle, 15_000), []);
  // Listed running, though our runner is idle: a runner without a handle
  // took it. The job may simply have started a moment ago: not yet.
  c.pollFinished(
    listing,
    [forgejoJob(1, "h-1", "in_progress")],
    20_000,
    20_000,
  );
  assert.deepEqual(c.runnersListed(scope, idle, 30_000), []);
  // Still idle a minute on: it would wait forever.
  const decisions = c.runnersListed(scope, idle, 80_000);
  assert.deepEqual(kills(decisions).map((m) => m.id), [machine!.id]);
  // A runner that is busy (ours took it) is never stopped so.
  const d = core();
  d.pollFinished(listing, [forgejoJob(2, "h-2", "queued")], 0, 0);
  const [own] = registers(d.tick(10_000));
  d.registered(own!.id, 12, 10_001);
  d.tick(10_002);
  d.pollFinished(
    listing,
    [forgejoJob(2, "h-2", "in_progress")],
    20_000,
    20_000,
  );
  const busy = [{ id: 12, name: own!.runnerName, online: true, busy: true }];
  assert.deepEqual(d.runnersListed(own!.triplet.scope, busy, 200_000), []);
});

Deno.test("forgejo: a machine whose runner took its job covers the job while the listing still says waiting", () => {
  const c = core();
  const listing = { forge: "codeberg", owner: "alice", repo: "app" };
  c.pollFinished(listing, [forgejoJob(1, "h-1", "queued")], 0, 0);
  const [machine] = registers(c.tick(10_000));
  c.registered(machine!.id, 11, 10_001);
  c.tick(10_002);
  // The janitor sees the runner busy before the next listing does.
  const busy = [{
    id: 11,
    name: machine!.runnerName,
    online: true,
    busy: true,
  }];
  c.runnersListed(machine!.triplet.scope, busy, 20_000);
  assert.equal(c.machines()[0]!.state, "running");
  c.pollFinished(listing, [forgejoJob(1, "h-1", "queued")], 21_000, 21_000);
  const decisions = c.tick(40_000);
  assert.deepEqual(registers(decisions), []);
  assert.deepEqual(kills(decisions), []);
});
