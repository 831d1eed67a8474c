/**
 * Scale-set discovery in the core (product.md §16): a scale set's
 * statistics are its machine type's demand (jobs assigned and not yet
 * running), job reports are not counted for it, a runner that took a job
 * is busy, warm machines take assigned jobs, and the capacity sent to
 * GitHub follows the budget.
 */

import assert from "node:assert/strict";
import { brief, states, testCore } from "./testing.ts";

/** 16G/8: `small` (4G/2) in a scale set, `big` (8G/4) too, named. */
const TOML = `
[host]
base_dir = "/srv/forrest"
ram = "16G"
cpus = 8

[github]
token_file = "token"
discovery = "scale-set"

[repositories.octo.app.machines.small]
base_image = "images/debian.img"
ram = "4G"
cpus = 2

[repositories.octo.app.machines.big]
base_image = "images/debian.img"
ram = "8G"
cpus = 4
scale_set = "octo-big"
`;

function newCore(toml = TOML) {
  return testCore(toml);
}

const small = {
  scope: { kind: "repository", owner: "octo", repo: "app" } as const,
  machine: "small",
};
const big = { ...small, machine: "big" };

Deno.test("the config names each type's scale set: scale_set, or the machine's name", () => {
  const core = newCore();
  const names = core.config.scopes[0]!.machines.map((m) => m.scaleSet);
  assert.deepEqual(names, ["small", "octo-big"]);
});

Deno.test("assigned jobs not yet running are the demand; job reports are not counted", () => {
  const core = newCore();
  assert.deepEqual(brief(core.tick(0)), []);
  core.scaleSetStatistics(small, { assigned: 2, running: 0 }, 10);
  // A webhook's job for the same type (a hook left configured) adds nothing.
  core.jobReported({
    id: 7,
    owner: "octo",
    repo: "app",
    status: "queued",
    labels: ["self-hosted", "forrest", "small"],
    runnerName: null,
  }, 10);
  assert.deepEqual(brief(core.tick(10)), [
    "register small#1",
    "register small#2",
    "start small#1",
    "start small#2",
  ]);
  // The same statistics again (a redelivered message) change nothing.
  core.scaleSetStatistics(small, { assigned: 2, running: 0 }, 20);
  assert.deepEqual(brief(core.tick(20)), []);
});

Deno.test("a runner that took a job runs; when the job is done the spare one goes", () => {
  const core = newCore();
  core.scaleSetStatistics(small, { assigned: 2, running: 0 }, 0);
  core.tick(0);
  for (const [id, runnerId] of [[1, 101], [2, 102]] as const) {
    core.registered(id, runnerId, 1);
  }
  core.runnersListed(small.scope, [
    {
      id: 101,
      name: "forrest-small-0000000000000001",
      online: true,
      busy: false,
    },
    {
      id: 102,
      name: "forrest-small-0000000000000002",
      online: true,
      busy: false,
    },
  ], 5_000);
  assert.deepEqual(states(core), ["small#1:waiting", "small#2:waiting"]);
  // JobStarted, with the statistics of its message.
  core.runnerStarted("forrest-small-0000000000000002", 1_000, 6_000);
  core.scaleSetStatistics(small, { assigned: 2, running: 1 }, 6_000);
  assert.deepEqual(brief(core.tick(6_000)), []);
  assert.deepEqual(states(core), ["small#1:waiting", "small#2:running"]);
  assert.deepEqual(core.drainObservations().pickup, [5]);
  // The other job was assigned elsewhere (canceled here): one too many.
  core.scaleSetStatistics(small, { assigned: 1, running: 1 }, 7_000);
  assert.deepEqual(brief(core.tick(7_000)), ["kill small#1 surplus"]);
  assert.deepEqual(states(core), ["small#1:stopping", "small#2:running"]);
});

Deno.test("a warm machine takes an assigned job; a new warm one boots after it", () => {
  const core = newCore(TOML.replace("cpus = 2\n", "cpus = 2\nmin_idle = 1\n"));
  assert.deepEqual(brief(core.tick(0)), ["start small#1 (warm)"]);
  core.guestReady(1, 1_000);
  core.scaleSetStatistics(small, { assigned: 1, running: 0 }, 2_000);
  assert.deepEqual(brief(core.tick(2_000)), [
    "register small#1",
    "start small#2 (warm)",
  ]);
});

Deno.test("the capacity sent to GitHub is what the budget left by other work takes", () => {
  const core = newCore(TOML.replace("cpus = 2\n", "cpus = 2\nmin_idle = 1\n"));
  // Warm machines give way: they do not count against it.
  core.tick(0);
  assert.equal(core.scaleSetCapacity(small), 4);
  assert.equal(core.scaleSetCapacity(big), 2);
  core.scaleSetStatistics(big, { assigned: 1, running: 0 }, 10);
  core.tick(10);
  // One big machine (8G/4) holds half the host: two small ones fit beside.
  assert.equal(core.scaleSetCapacity(small), 2);
  // Its own machines count as its capacity.
  assert.equal(core.scaleSetCapacity(big), 2);
  assert.deepEqual(core.status().scaleSets, [
    {
      triplet: "octo/app/small",
      name: "small",
      assigned: 0,
      running: 0,
      capacity: 2,
    },
    {
      triplet: "octo/app/big",
      name: "octo-big",
      assigned: 1,
      running: 0,
      capacity: 2,
    },
  ]);
});
