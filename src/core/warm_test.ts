/**
 * Warm machines in the core (product.md §13): `min_idle` booted machines
 * per type, from budget no queued job needs; a job takes one without a
 * boot and a new one boots after it; they give way to jobs of other types,
 * go when their image or config changes, and at shutdown.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import { brief, states, testCore } from "./testing.ts";
import type { JobReport } from "./jobs.ts";

/** 16G/8: `small` (4G/2) keeps one warm machine; `big` (8G/4) none. */
const TOML = `
[host]
base_dir = "/srv/forrest"
ram = "16G"
cpus = 8

[repositories.octo.app.machines.small]
base_image = "images/debian.img"
ram = "4G"
cpus = 2
min_idle = 1

[repositories.octo.app.machines.big]
base_image = "images/debian.img"
ram = "8G"
cpus = 4

[repositories.alice.app]
forge = "codeberg"

[repositories.alice.app.machines.build]
base_image = "images/debian.img"
ram = "2G"
cpus = 1
min_idle = 1

[forgejo.codeberg]
url = "https://codeberg.example"
token_file = "t"
`;

function newCore(toml = TOML) {
  return testCore(toml);
}

function job(id: number, machine: string, status = "queued"): JobReport {
  return {
    id,
    owner: "octo",
    repo: "app",
    status: status as JobReport["status"],
    labels: ["self-hosted", "forrest", machine],
    runnerName: null,
  };
}

/** A core whose small and build warm machines have booted. */
function warmCore(toml = TOML) {
  const core = newCore(toml);
  assert.deepEqual(brief(core.tick(0)), [
    "start small#1 (warm)",
    "start build#2 (warm)",
  ]);
  assert.deepEqual(states(core), ["small#1:starting", "build#2:starting"]);
  assert.equal(core.status().machines[0]!.note, "warm machine, booting");
  core.guestReady(1, 9_000);
  core.guestReady(2, 9_000);
  assert.deepEqual(states(core), ["small#1:warm", "build#2:warm"]);
  assert.deepEqual(core.drainObservations().boot, [9, 9]);
  return core;
}

Deno.test("warm: min_idle boots machines without runners, and no more", () => {
  const core = warmCore();
  assert.deepEqual(brief(core.tick(10_000)), []);
  assert.equal(core.status().budget.ram.used, 6 * 1024 ** 3);
  assert.equal(core.status().machines[0]!.note, null);
  // Warm machines persist nothing: machines based on them need not wait.
  assert.equal(
    core.isRunning({
      scope: { kind: "repository", owner: "octo", repo: "app" },
      machine: "small",
    }),
    false,
  );
  assert.equal(core.nextWake(10_000), undefined, "nothing to time out");
});

Deno.test("warm: a job takes the warm machine at once; a new one boots after it", () => {
  const core = warmCore();
  core.jobReported(job(1, "small"), 20_000);
  assert.deepEqual(brief(core.tick(20_000)), [
    "register small#1",
    "start small#3 (warm)",
  ]);
  assert.deepEqual(states(core), [
    "small#1:starting",
    "build#2:warm",
    "small#3:starting",
  ]);
  // Its start timeout counts from the job, not from its boot.
  assert.equal(core.nextWake(20_000), 20_000 + 15 * 60_000 - 20_000 + 20_000);
  core.registered(1, 101, 20_100);
  core.runnersListed({ kind: "repository", owner: "octo", repo: "app" }, [
    {
      id: 101,
      name: "forrest-small-0000000000000001",
      online: true,
      busy: false,
    },
  ], 20_500);
  assert.equal(core.machines()[0]!.state, "waiting");
  core.jobReported(
    {
      ...job(1, "small", "in_progress"),
      runnerName: "forrest-small-0000000000000001",
    },
    21_000,
  );
  assert.equal(core.machines()[0]!.state, "running");
  // Its boot was counted once, when it got warm.
  assert.deepEqual(core.drainObservations(), { pickup: [1], boot: [] });
});

Deno.test("warm: a second job gets a new machine while the warm one is taken", () => {
  const core = warmCore();
  core.jobReported(job(1, "small"), 20_000);
  core.jobReported(job(2, "small"), 20_000);
  assert.deepEqual(brief(core.tick(20_000)), [
    "register small#1",
    "register small#3",
    "start small#3",
    "start small#4 (warm)",
  ]);
});

Deno.test("warm: machines give way to jobs of other types, and refill from what is left", () => {
  const core = newCore(
    TOML.replace(
      "min_idle = 1\n\n[repositories.octo",
      "min_idle = 2\n\n[repositories.octo",
    ),
  );
  assert.deepEqual(brief(core.tick(0)), [
    "start small#1 (warm)",
    "start small#2 (warm)",
    "start build#3 (warm)",
  ]);
  for (const id of [1, 2, 3]) core.guestReady(id, 9_000);
  // Two bigs need 16G: 10G are warm machines'.
  core.jobReported(job(1, "big"), 20_000);
  core.jobReported(job(2, "big"), 20_000);
  assert.deepEqual(brief(core.tick(20_000)), [
    "register big#4",
    "register big#5",
    "kill build#3 make-room",
    "kill small#2 make-room",
    "kill small#1 make-room",
  ]);
  // What is being freed counts: no more kills while they stop, and no new
  // warm machine takes the room.
  assert.deepEqual(brief(core.tick(21_000)), []);
  for (const id of [1, 2, 3]) core.stopped(id, 22_000);
  assert.deepEqual(brief(core.tick(22_000)), ["start big#4", "start big#5"]);
  assert.deepEqual(states(core), [
    "big#4:starting",
    "big#5:starting",
    "small#6:requested",
    "small#7:requested",
    "build#8:requested",
  ]);
  assert.equal(
    core.status().machines[2]!.note,
    "warm machine, waiting for RAM and CPUs no job needs",
  );
  // A big's job ends: its room goes to warm machines again.
  core.jobReported(
    {
      ...job(1, "big", "in_progress"),
      runnerName: "forrest-big-0000000000000004",
    },
    25_000,
  );
  core.jobReported(job(1, "big", "completed"), 29_000);
  core.vmEnded(4, 30_000);
  core.stopped(4, 30_000);
  assert.deepEqual(brief(core.tick(30_000)), [
    "start small#6 (warm)",
    "start small#7 (warm)",
  ]);
});

Deno.test("warm: none start while a job waits for the budget (the debounce)", () => {
  const core = newCore(TOML.replace('ram = "16G"', 'ram = "8G"'));
  core.jobReported(job(1, "big"), 0);
  core.jobReported(job(2, "big"), 0);
  // Contended: the jobs wait for the debounce; warm machines wait for them.
  assert.deepEqual(brief(core.tick(0)), []);
  assert.deepEqual(brief(core.tick(5_000)), [
    "register big#3",
    "register big#4",
    "start big#3",
  ]);
});

Deno.test("warm: a changed image, config or refusal replaces or ends them", () => {
  const core = warmCore();
  assert.deepEqual(brief([core.imageChanged(1, 10_000)]), [
    "kill small#1 stale-image",
  ]);
  core.stopped(1, 11_000);
  assert.deepEqual(brief(core.tick(11_000)), ["start small#3 (warm)"]);
  // A reload that changes the machine replaces its warm machine.
  core.setConfig(
    parseConfig(TOML.replace('ram = "4G"', 'ram = "3G"'), {
      file: "f.toml",
      cwd: "/etc",
    }),
    12_000,
  );
  assert.deepEqual(brief(core.tick(12_000)), ["kill small#3 stale-image"]);
  core.stopped(3, 13_000);
  assert.deepEqual(brief(core.tick(13_000)), ["start small#4 (warm)"]);
  // An image that cannot wait for JOBDATA keeps none for a while.
  assert.deepEqual(brief([core.warmRefused(4, 14_000)]), [
    "kill small#4 surplus",
  ]);
  core.stopped(4, 14_000);
  assert.deepEqual(brief(core.tick(15_000)), []);
  assert.equal(core.nextWake(15_000), 14_000 + 5 * 60_000);
  assert.deepEqual(brief(core.tick(14_000 + 5 * 60_000)), [
    "start small#5 (warm)",
  ]);
});

Deno.test("warm: one that never gets ready times out, its type backs off", () => {
  const core = newCore();
  core.tick(0);
  core.guestReady(2, 5_000);
  assert.deepEqual(brief(core.tick(15 * 60_000)), [
    "kill small#1 start-timeout",
  ]);
  core.stopped(1, 15 * 60_000);
  assert.deepEqual(brief(core.tick(15 * 60_000)), [], "backing off");
  assert.deepEqual(brief(core.tick(15 * 60_000 + 10_000)), [
    "start small#3 (warm)",
  ]);
});

Deno.test("warm: shutdown kills them; none boot after", () => {
  const core = warmCore();
  assert.deepEqual(brief(core.shutdown(10_000)), [
    "kill small#1 shutdown",
    "kill build#2 shutdown",
  ]);
  core.stopped(1, 11_000);
  core.stopped(2, 11_000);
  assert.deepEqual(brief(core.tick(12_000)), []);
});

Deno.test("warm: a Forgejo job takes a warm machine made for no job yet", () => {
  const core = warmCore();
  core.pollFinished(
    { forge: "codeberg", owner: "alice", repo: "app" },
    [{
      id: 9,
      forge: "codeberg",
      handle: "h-9",
      owner: "alice",
      repo: "app",
      status: "queued",
      labels: ["self-hosted", "forrest", "build"],
      runnerName: null,
    }],
    20_000,
    20_000,
  );
  const decisions = core.tick(20_000);
  assert.deepEqual(brief(decisions), [
    "register build#2",
    "start build#3 (warm)",
  ]);
  assert.deepEqual(
    decisions[0]!.kind === "register" && decisions[0]!.machine.forJob,
    {
      key: "codeberg:h-9",
      handle: "h-9",
    },
  );
});
