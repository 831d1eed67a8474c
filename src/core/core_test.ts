/**
 * The core as tables: each case is a config, a script of events at fake
 * times, and the decisions and states it must produce.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import { Core, type Decision, DEFAULT_CORE_OPTIONS } from "./core.ts";
import type { JobReport } from "./jobs.ts";
import { machineForJob, runnerLabels } from "./labels.ts";

const OCTO_APP = { kind: "repository", owner: "octo", repo: "app" } as const;

/** 16 GiB of RAM and 8 CPUs; `small` takes 4G/2, `big` 8G/4. */
const TOML = `
[host]
base_dir = "/srv/forrest"
ram = "16G"
cpus = 8

[repositories.octo.app.machines.small]
base_image = "images/debian.img"
ram = "4G"
cpus = 2
labels = ["Linux"]

[repositories.octo.app.machines.big]
base_image = "images/debian.img"
ram = "8G"
cpus = 4
`;

function config(toml = TOML) {
  return parseConfig(toml, { file: "forrest.toml", cwd: "/etc/forrest" });
}

function newCore(toml = TOML) {
  let n = 0;
  return new Core(config(toml), {
    ...DEFAULT_CORE_OPTIONS,
    randomSuffix: () => String(++n).padStart(16, "0"),
  });
}

function job(
  id: number,
  status: JobReport["status"],
  labels = ["self-hosted", "forrest", "small"],
  runnerName: string | null = null,
): JobReport {
  return { id, owner: "octo", repo: "app", status, labels, runnerName };
}

/** Decisions as short strings: `register small#1`, `kill small#1 surplus`. */
function brief(decisions: readonly Decision[]): string[] {
  return decisions.map((d) => {
    if (d.kind === "delete-runner") return `delete-runner ${d.runnerName}`;
    const name = `${d.machine.triplet.machine}#${d.machine.id}`;
    if (d.kind === "kill") {
      return `kill ${name} ${d.reason}${d.quarantine ? " quarantine" : ""}`;
    }
    return `${d.kind} ${name}`;
  });
}

function states(core: Core): string[] {
  return core.machines().map((m) => `${m.triplet.machine}#${m.id}:${m.state}`);
}

/** Registers every machine that asked for it, as the executor would. */
function registerAll(core: Core, decisions: readonly Decision[], now: number) {
  for (const d of decisions) {
    if (d.kind === "register") {
      core.registered(d.machine.id, 100 + d.machine.id, now);
    }
  }
}

Deno.test("labels: a job belongs to the machine whose labels cover it", () => {
  const cfg = config();
  const cases: [string[], string | undefined][] = [
    [["self-hosted", "forrest", "small"], "small"],
    [["small"], "small"],
    [["SELF-HOSTED", "Forrest", "SMALL", "linux"], "small"],
    [["self-hosted", "forrest", "big"], "big"],
    [["self-hosted", "forrest"], undefined], // no machine name
    [["self-hosted", "forrest", "small", "gpu"], undefined], // gpu: nobody
    [["self-hosted", "forrest", "big", "linux"], undefined], // linux: small's
    [["ubuntu-latest"], undefined],
  ];
  for (const [labels, want] of cases) {
    assert.equal(
      machineForJob(cfg, { owner: "octo", repo: "app" }, labels)?.triplet
        .machine,
      want,
      labels.join(","),
    );
  }
  assert.equal(
    machineForJob(cfg, { owner: "OCTO", repo: "App" }, ["small"])?.triplet
      .machine,
    "small",
  );
  assert.equal(
    machineForJob(cfg, { owner: "octo", repo: "other" }, ["small"]),
    undefined,
  );
  const small = cfg.scopes[0]!.machines[0]!;
  assert.deepEqual(runnerLabels(small), [
    "self-hosted",
    "forrest",
    "small",
    "Linux",
  ]);
});

Deno.test("a queue the budget takes is planned at once: runners register while VMs start", () => {
  const core = newCore();
  core.jobReported(job(1, "queued"), 0);
  const first = core.tick(0);
  assert.deepEqual(brief(first), ["register small#1", "start small#1"]);
  core.jobReported(job(2, "queued"), 2_000);
  assert.deepEqual(brief(core.tick(2_000)), [
    "register small#2",
    "start small#2",
  ]);
  assert.deepEqual(states(core), ["small#1:starting", "small#2:starting"]);
  const [registered] = first;
  assert.equal(
    registered?.kind === "register" && registered.machine.runnerName,
    "forrest-small-0000000000000001",
  );
  // Registered later: the machine stays starting (its guest gets the runner).
  core.registered(1, 101, 3_000);
  assert.deepEqual(states(core), ["small#1:starting", "small#2:starting"]);
  assert.equal(core.machines()[0]!.runnerId, 101);
  assert.deepEqual(core.status().budget, {
    ram: { used: 8 * 1024 ** 3, total: 16 * 1024 ** 3 },
    cpus: { used: 4, total: 8 },
  });
});

Deno.test("while the budget is contended, demand settles after the debounce", () => {
  const core = newCore();
  const big = ["self-hosted", "forrest", "big"];
  // Three bigs (8G/4 each) against 16G/8: not all at once.
  core.jobReported(job(1, "queued", big), 0);
  core.jobReported(job(2, "queued", big), 1_000);
  core.jobReported(job(3, "queued", big), 2_000);
  assert.deepEqual(brief(core.tick(2_000)), [], "not settled yet");
  assert.equal(core.nextWake(2_000), 7_000);
  assert.deepEqual(brief(core.tick(7_000)), [
    "register big#1",
    "register big#2",
    "register big#3",
    "start big#1",
    "start big#2",
  ]);
});

Deno.test("a steady stream of jobs on a full budget settles at the latest after maxDebounce", () => {
  const core = newCore(TOML.replace('ram = "16G"', 'ram = "8G"'));
  core.jobReported(job(1, "queued"), 0);
  core.jobReported(job(2, "queued"), 0);
  assert.equal(core.tick(0).length, 4, "the first two fit: at once");
  for (let t = 4_000; t <= 40_000; t += 4_000) {
    core.jobReported(job(t + 1, "queued"), t);
    const decisions = core.tick(t);
    if (t < 34_000) assert.deepEqual(decisions, [], `t=${t}`);
    else if (t === 36_000) {
      assert.deepEqual(
        decisions.map((d) => d.kind),
        Array(9).fill("register"),
      );
    }
  }
});

Deno.test("the budget: largest first, smaller ones fill the rest, cpus count", () => {
  const core = newCore();
  const labels = (m: string) => ["self-hosted", "forrest", m];
  // 3 big (8G/4) and 3 small (4G/2) against 16G/8 cpus.
  for (let i = 1; i <= 3; i++) {
    core.jobReported(job(i, "queued", labels("small")), 0);
  }
  for (let i = 4; i <= 6; i++) {
    core.jobReported(job(i, "queued", labels("big")), 0);
  }
  const started = brief(core.tick(5_000)).filter((d) => d.startsWith("start"));
  // 8 cpus: two bigs use them all, although 0 GiB RAM is left either way.
  assert.deepEqual(started, ["start big#4", "start big#5"]);
  const big4 = core.machines().find((m) => m.id === 4)!;
  core.vmEnded(big4.id, 6_000);
  assert.deepEqual(
    brief(core.tick(6_000)),
    [],
    "stopping still holds the budget",
  );
  core.stopped(big4.id, 7_000);
  assert.deepEqual(brief(core.tick(7_000)), ["start big#6"]);
});

Deno.test("surplus machines are killed cheapest first; running ones never", () => {
  const core = newCore(TOML.replace('ram = "16G"', 'ram = "8G"'));
  for (let i = 1; i <= 5; i++) core.jobReported(job(i, "queued"), 0);
  // Room for two smalls: #1 and #2 start while they register.
  const reg = core.tick(5_000);
  assert.equal(reg.filter((d) => d.kind === "register").length, 5);
  core.registered(1, 101, 5_000);
  core.registered(2, 102, 5_000);
  core.registered(3, 103, 5_000);
  core.tick(11_000);
  assert.deepEqual(states(core), [
    "small#1:starting",
    "small#2:starting",
    "small#3:registered",
    "small#4:registering",
    "small#5:registering",
  ]);
  core.jobReported(
    job(1, "in_progress", undefined, "forrest-small-0000000000000001"),
    12_000,
  );
  assert.deepEqual(states(core)[0], "small#1:running");
  // Jobs 2..5 are cancelled: four machines are surplus, the running one is not.
  for (let i = 2; i <= 5; i++) core.jobReported(job(i, "completed"), 12_000);
  const kills = brief(core.tick(17_000));
  assert.deepEqual(kills, [
    "kill small#5 surplus",
    "kill small#4 surplus",
    "kill small#3 surplus",
    "kill small#2 surplus",
  ]);
  assert.deepEqual(states(core), [
    "small#1:running",
    "small#2:stopping",
    "small#3:stopping",
    "small#4:stopping",
    "small#5:stopping",
  ]);
});

Deno.test("a job taken by our runner moves its machine to running, with metrics", () => {
  const core = newCore();
  core.jobReported({ ...job(1, "queued"), createdAt: 0 }, 0);
  registerAll(core, core.tick(5_000), 5_000);
  core.tick(6_000);
  core.runnersListed(OCTO_APP, [
    {
      id: 101,
      name: "forrest-small-0000000000000001",
      online: true,
      busy: false,
    },
  ], 16_000);
  assert.deepEqual(states(core), ["small#1:waiting"]);
  core.jobReported(
    job(1, "in_progress", undefined, "forrest-small-0000000000000001"),
    20_000,
  );
  assert.deepEqual(states(core), ["small#1:running"]);
  assert.equal(core.machines()[0]!.jobId, 1);
  assert.deepEqual(core.drainObservations(), { pickup: [20], boot: [11] });
  assert.deepEqual(core.drainObservations(), { pickup: [], boot: [] });
  // Its job is no longer queued, so no new machine is needed.
  assert.deepEqual(brief(core.tick(30_000)), []);
  core.jobReported(
    job(1, "completed", undefined, "forrest-small-0000000000000001"),
    40_000,
  );
  core.vmEnded(1, 41_000);
  core.stopped(1, 42_000);
  assert.deepEqual(brief(core.tick(50_000)), []);
  assert.deepEqual(core.machines(), []);
});

Deno.test("the janitor's runner list: online, busy, and orphans deleted", () => {
  const core = newCore();
  core.jobReported(job(1, "queued"), 0);
  core.jobReported(job(2, "queued"), 0);
  registerAll(core, core.tick(5_000), 5_000);
  core.tick(5_000);
  const decisions = core.runnersListed(OCTO_APP, [
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
      busy: true,
    },
    {
      id: 7,
      name: "forrest-small-leftover00000000",
      online: false,
      busy: false,
    },
    { id: 8, name: "forrest-small-stillbusy0000000", online: true, busy: true },
    { id: 9, name: "forrest-small-online000000000", online: true, busy: false },
    { id: 10, name: "someone-elses-runner", online: false, busy: false },
  ], 6_000);
  assert.deepEqual(brief(decisions), [
    "delete-runner forrest-small-leftover00000000",
  ]);
  assert.deepEqual(states(core), ["small#1:waiting", "small#2:running"]);
});

Deno.test("start timeout kills the machine and quarantines its image", () => {
  const core = newCore();
  core.jobReported(job(1, "queued"), 0);
  registerAll(core, core.tick(5_000), 5_000);
  core.tick(5_000);
  assert.equal(core.nextWake(5_000), 5_000 + 15 * 60_000);
  assert.deepEqual(brief(core.tick(5_000 + 15 * 60_000 - 1)), []);
  assert.deepEqual(brief(core.tick(5_000 + 15 * 60_000)), [
    "kill small#1 start-timeout quarantine",
  ]);
  core.stopped(1, 5_000 + 15 * 60_000);
  // The job is still queued: a new machine, after the failure backoff.
  assert.deepEqual(brief(core.tick(5_000 + 15 * 60_000 + 10_000)), [
    "register small#2",
    "start small#2",
  ]);
});

Deno.test("a machine that fails to start backs its type off, doubling", () => {
  const core = newCore();
  core.jobReported(job(1, "queued"), 0);
  registerAll(core, core.tick(5_000), 5_000);
  core.tick(5_000);
  core.vmEnded(1, 6_000); // qemu died at start
  core.stopped(1, 6_000);
  assert.deepEqual(brief(core.tick(6_000)), [], "backing off 10 s");
  assert.equal(core.nextWake(6_000), 16_000);
  const again = core.tick(16_000);
  assert.deepEqual(brief(again), ["register small#2", "start small#2"]);
  // GitHub said no, while its VM was starting: the VM goes too.
  assert.deepEqual(brief([core.registerFailed(2, 17_000)!]), [
    "kill small#2 register-failed",
  ]);
  core.stopped(2, 18_000);
  assert.deepEqual(brief(core.tick(30_000)), [], "now 20 s");
  assert.deepEqual(brief(core.tick(37_000)), [
    "register small#3",
    "start small#3",
  ]);
});

Deno.test("image waits go back to registered, log once, retry later", () => {
  const core = newCore();
  core.jobReported(job(1, "queued"), 0);
  registerAll(core, core.tick(5_000), 5_000);
  core.tick(5_000);
  assert.equal(
    core.imageWait(1, "no-image", "waiting for an image", 5_000),
    true,
  );
  assert.deepEqual(states(core), ["small#1:registered"]);
  assert.deepEqual(core.tick(10_000), [], "retries after 30 s");
  assert.deepEqual(brief(core.tick(35_000)), ["start small#1"]);
  assert.equal(
    core.imageWait(1, "no-image", "waiting for an image", 35_000),
    false,
  );
  assert.equal(core.status().machines[0]!.note, "waiting for an image");
});

Deno.test("the poller is the truth: unlisted jobs are dropped", () => {
  const core = newCore();
  core.jobReported(job(1, "queued"), 0);
  core.jobReported(job(2, "queued"), 0);
  core.pollFinished(
    { owner: "octo", repo: "app" },
    [job(2, "queued"), job(3, "queued")],
    1_000,
    2_000,
  );
  assert.deepEqual(core.jobs().map((j) => j.id), [2, 3]);
  // A webhook that arrived while the poll ran is newer than the poll.
  core.jobReported(job(4, "queued"), 3_000);
  core.pollFinished({ owner: "octo", repo: "app" }, [], 2_500, 4_000);
  assert.deepEqual(core.jobs().map((j) => j.id), [4]);
  // Jobs of other repositories and unknown labels are not tracked at all.
  core.jobReported({ ...job(5, "queued"), repo: "other" }, 5_000);
  core.jobReported(job(6, "queued", ["ubuntu-latest"]), 5_000);
  assert.deepEqual(core.jobs().map((j) => j.id), [4]);
});

Deno.test("jobsListed() reports what a partial listing showed, drops nothing, and yields to newer webhooks", () => {
  const core = newCore();
  core.jobReported(job(1, "queued"), 1_000);
  core.jobReported(job(2, "queued"), 3_000);
  const changes = core.jobsListed(
    [job(2, "completed"), job(3, "queued")],
    2_000,
    4_000,
  );
  // Job 2's webhook (at 3 s) is newer than the listing (from 2 s): kept.
  assert.deepEqual(
    changes.map((c) => c.kind === "none" ? ["none"] : [c.kind, c.job.id]),
    [["added", 3]],
  );
  // Job 1 was not listed: a quick listing covers only what changed.
  assert.deepEqual(core.jobs().map((j) => [j.id, j.status]), [
    [1, "queued"],
    [2, "queued"],
    [3, "queued"],
  ]);
});

Deno.test("a reload: new machines use the new config, running ones keep theirs", () => {
  const core = newCore();
  core.jobReported(job(1, "queued"), 0);
  registerAll(core, core.tick(5_000), 5_000);
  core.tick(5_000);
  core.setConfig(
    config(TOML.replace('ram = "4G"\ncpus = 2', 'ram = "2G"\ncpus = 1')),
    6_000,
  );
  core.jobReported(job(2, "queued"), 6_000);
  registerAll(core, core.tick(11_000), 11_000);
  const machines = core.machines();
  assert.deepEqual(machines.map((m) => m.config.ram / 1024 ** 3), [4, 2]);
  // A reload that removes the machine drops its jobs: no demand is left.
  core.setConfig(
    config(
      TOML.replace(
        "[repositories.octo.app.machines.small]",
        "[repositories.octo.app.machines.tiny]",
      ),
    ),
    12_000,
  );
  assert.deepEqual(core.jobs(), []);
});

Deno.test("shutdown kills every machine without a job; killAll the rest", () => {
  const core = newCore();
  core.jobReported(job(1, "queued"), 0);
  core.jobReported(job(2, "queued"), 0);
  registerAll(core, core.tick(5_000), 5_000);
  core.tick(5_000);
  core.jobReported(
    job(1, "in_progress", undefined, "forrest-small-0000000000000001"),
    6_000,
  );
  assert.deepEqual(brief(core.shutdown(7_000)), ["kill small#2 shutdown"]);
  core.jobReported(job(3, "queued"), 7_000);
  assert.deepEqual(brief(core.tick(20_000)), [], "no new machines");
  assert.deepEqual(brief(core.killAll(30_000)), ["kill small#1 shutdown"]);
});

Deno.test("a machine killed before it started holds no budget", () => {
  const core = newCore(TOML.replace('ram = "16G"', 'ram = "8G"'));
  for (let i = 1; i <= 3; i++) core.jobReported(job(i, "queued"), 0);
  const first = core.tick(5_000);
  registerAll(core, first, 5_000);
  assert.deepEqual(brief(first).filter((d) => d.startsWith("start")), [
    "start small#1",
    "start small#2",
  ]);
  core.jobReported(job(3, "completed"), 6_000);
  assert.deepEqual(brief(core.tick(11_000)), ["kill small#3 surplus"]);
  core.stopped(3, 11_000);
  // One whose registration fails before its VM started just goes.
  core.jobReported(job(4, "queued"), 12_000);
  assert.deepEqual(brief(core.tick(17_000)), ["register small#4"]);
  assert.equal(core.registerFailed(4, 18_000), undefined);
  assert.equal(core.machines().length, 2);
  assert.equal(core.status().budget.ram.used, 8 * 1024 ** 3);
  assert.equal(
    core.isRunning({
      scope: { kind: "repository" as const, owner: "octo", repo: "app" },
      machine: "small",
    }),
    true,
  );
});

Deno.test("out-of-order reports never move a running job back to queued", () => {
  const core = newCore();
  const runner = "forrest-small-0000000000000001";
  core.jobReported(job(1, "queued"), 0);
  // A poll starts at 1 000 and lists the job as queued; the webhook saying
  // it runs arrives at 1 500, before the poll's answer at 2 000.
  core.jobReported(job(1, "in_progress", undefined, runner), 1_500);
  core.pollFinished(
    { owner: "octo", repo: "app" },
    [job(1, "queued")],
    1_000,
    2_000,
  );
  assert.equal(core.jobs()[0]!.status, "in_progress");
  // A late "queued" delivery after "in_progress" changes nothing either.
  core.jobReported(job(1, "queued"), 3_000);
  assert.equal(core.jobs()[0]!.status, "in_progress");
  assert.deepEqual(
    brief(core.tick(10_000)),
    [],
    "no machine for a running job",
  );
  core.jobReported(job(1, "completed", undefined, runner), 11_000);
  assert.deepEqual(core.jobs(), []);
});

Deno.test("an expired image wait with a full budget does not wake the loop at once", () => {
  const core = newCore(TOML.replace('ram = "16G"', 'ram = "8G"'));
  for (let i = 1; i <= 3; i++) core.jobReported(job(i, "queued"), 0);
  const first = core.tick(5_000);
  registerAll(core, first, 5_000);
  assert.deepEqual(brief(first).filter((d) => d.startsWith("start")), [
    "start small#1",
    "start small#2",
  ]);
  // #1 waits for its image and goes back; #3 takes its place.
  core.imageWait(1, "no-image", "waiting for an image", 5_000);
  assert.deepEqual(brief(core.tick(5_000)), ["start small#3"]);
  const later = 5_000 + 60_000;
  assert.deepEqual(brief(core.tick(later)), [], "no room for #1");
  const wake = core.nextWake(later);
  assert.ok(wake === undefined || wake > later, `woke at ${wake}`);
});
