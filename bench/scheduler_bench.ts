/**
 * The core's planning at scale: 1,000 queued jobs across 50 machine types
 * of 10 repositories, planned into runner registrations, then into VM
 * starts against the budget. Pure code: this is the cost of one tick.
 */

import { parseConfig } from "../src/config/mod.ts";
import { Core, type Decision, DEFAULT_CORE_OPTIONS } from "../src/core/mod.ts";

const TYPES = 50;
const JOBS = 1_000;

function configText(): string {
  let text = `[host]
base_dir = "/srv/forrest"
ram = "512G"
cpus = 256
`;
  for (let t = 0; t < TYPES; t++) {
    text += `
[repositories.org.repo${t % 10}.machines.m${t}]
base_image = "images/debian.img"
ram = "${1 + (t % 8)}G"
cpus = ${1 + (t % 4)}
`;
  }
  return text;
}

const config = parseConfig(configText(), { file: "bench.toml", cwd: "/" });

function queuedCore(): Core {
  let n = 0;
  const core = new Core(config, {
    ...DEFAULT_CORE_OPTIONS,
    randomSuffix: () => String(++n).padStart(16, "0"),
  });
  for (let i = 0; i < JOBS; i++) {
    const t = i % TYPES;
    core.jobReported({
      id: i + 1,
      owner: "org",
      repo: `repo${t % 10}`,
      status: "queued",
      labels: ["self-hosted", "forrest", `m${t}`],
      runnerName: null,
    }, 0);
  }
  return core;
}

function registerAll(core: Core, decisions: readonly Decision[]): number {
  let n = 0;
  for (const d of decisions) {
    if (d.kind === "register") {
      core.registered(d.machine.id, d.machine.id, 6_000);
    }
    n++;
  }
  return n;
}

Deno.bench({
  name:
    `report ${JOBS} queued jobs (label matching) for ${TYPES} machine types`,
  fn() {
    queuedCore();
  },
});

Deno.bench({
  name: `plan ${JOBS} jobs into ${JOBS} runner registrations (one tick)`,
  fn(b) {
    const core = queuedCore();
    b.start();
    const decisions = core.tick(5_000);
    b.end();
    if (decisions.length !== JOBS) throw new Error(`${decisions.length}`);
  },
});

Deno.bench({
  name: `plan VM starts for ${JOBS} registered machines against the budget`,
  fn(b) {
    const core = queuedCore();
    registerAll(core, core.tick(5_000));
    b.start();
    const starts = core.tick(6_000);
    b.end();
    if (starts.length === 0) throw new Error("nothing started");
  },
});

Deno.bench({
  name: `an idle tick with ${JOBS} machines (nothing to do)`,
  fn(b) {
    const core = queuedCore();
    registerAll(core, core.tick(5_000));
    core.tick(6_000);
    b.start();
    core.tick(7_000);
    b.end();
  },
});
