/**
 * The scale-set listener with the real GitHub forge against the GitHub
 * double's Actions service, over HTTP: a job assigned through the queue
 * becomes demand, a runner generated in the scale set takes it, and the
 * faults of ../shared/research/scale-sets-and-peers.md C.7–C.12 are
 * lived through: a session left by a crash, another listener's session,
 * expired tokens, 5xx and empty answers of the queue, a failed
 * acknowledgement, the scale set deleted on GitHub, GHES's JobAvailable.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type MachineConfig, parseConfig } from "../config/mod.ts";
import { runnerLabels } from "../core/mod.ts";
import { GitHubForge } from "../forge/mod.ts";
import { Secret } from "../log/mod.ts";
import {
  generateAppKey,
  GitHubDouble,
  type GitHubDoubleOptions,
} from "../../tests/github/mod.ts";
import { withTempDir } from "../../tests/temp.ts";
import type {
  JobMessage,
  ScaleSetStatistics,
} from "../forge/github/scale_set/mod.ts";
import { ScaleSetListener } from "./scale_set_listener.ts";
import type { Job } from "../../tests/github/mod.ts";
import { standinCall } from "../../tests/github/standin.ts";

const APP_ID = 31;
const KEY = await generateAppKey();
const LABELS = ["self-hosted", "forrest", "debian"];

/**
 * plugin-throttling starts its rate-limit groups (with intervals that live
 * as long as the process) on the first request of the process: made here,
 * outside any test, so the sanitizers see only the tests' own.
 */
await withScaleSet({}, async (s) => {
  await s.forge.listRunners(s.machine.triplet.scope);
});

interface Recorded {
  readonly statistics: ScaleSetStatistics[];
  readonly started: JobMessage[];
  capacity: number;
}

interface Setup {
  readonly double: GitHubDouble;
  readonly forge: GitHubForge;
  readonly machine: MachineConfig;
  readonly recorded: Recorded;
  readonly dir: string;
  /** A new listener of the machine's scale set (not started). */
  listener(owner?: string): ScaleSetListener;
  /** The assigned count the listener last reported. */
  assigned(): number | undefined;
  /** Starts a listener and waits for its session. */
  listening(): Promise<ScaleSetListener>;
  /** Queues a job of the machine with no webhook, and waits until `assigned`. */
  queue(assigned?: number, timeoutMs?: number): Promise<Job>;
}

async function withScaleSet(
  options: Partial<GitHubDoubleOptions["scaleSets"]> & {
    readonly toml?: string;
  },
  body: (setup: Setup) => Promise<void>,
): Promise<void> {
  const { toml, ...scaleSets } = options;
  await withTempDir(async (dir) => {
    const double = await GitHubDouble.start({
      appId: APP_ID,
      privateKeyPem: KEY,
      webhookSecret: "unused",
      scaleSets: { pollWindowMs: 300, ...scaleSets },
    });
    double.addRepo("octo", "app");
    const config = parseConfig(
      `[host]
base_dir = "${dir}"
ram = "4G"
[github]
app_id = ${APP_ID}
private_key_file = "k.pem"
discovery = "scale-set"
[repositories.octo.app.machines.debian]
base_image = "x.img"
ram = "1G"
${toml ?? ""}`,
      { file: "forrest.toml", cwd: dir },
    );
    const machine = config.scopes[0]!.machines[0]!;
    const forge = new GitHubForge({
      app: { appId: APP_ID, privateKey: new Secret(KEY) },
      apiUrl: double.url,
      scaleSets: true,
      scaleSetRetryBase: 10,
      // The double answers a poll within 300 ms: one that takes 2 s hangs.
      scaleSetPollTimeout: 2_000,
      requestTimeout: 5_000,
    });
    const recorded: Recorded = { statistics: [], started: [], capacity: 4 };
    const listeners: ScaleSetListener[] = [];
    const listen = (owner = "host-a") => {
      const listener = new ScaleSetListener({
        forge,
        config: machine,
        owner,
        baseDir: dir,
        backoff: 50,
        events: {
          statistics: (_c, s) => void recorded.statistics.push(s),
          jobStarted: (_c, job) => void recorded.started.push(job),
          capacity: () => recorded.capacity,
        },
      });
      listeners.push(listener);
      return listener;
    };
    const assigned = () => recorded.statistics.at(-1)?.totalAssignedJobs;
    try {
      await body({
        double,
        forge,
        machine,
        recorded,
        dir,
        listener: (owner = "host-a") => listen(owner),
        assigned,
        listening: async () => {
          const listener = listen();
          listener.start();
          await double.waitFor(
            () => double.openSessions().length === 1,
            10_000,
            "a session",
          );
          return listener;
        },
        queue: async (count = 1, timeoutMs = 10_000) => {
          const job = await double.queueJob({
            owner: "octo",
            repo: "app",
            labels: LABELS,
            script: "true",
            webhook: false,
          });
          await double.waitFor(
            () => assigned() === count,
            timeoutMs,
            `assigned ${count}`,
          );
          return job;
        },
      });
    } finally {
      await Promise.all(listeners.map((l) => l.stop()));
      await double.close();
    }
  });
}

async function register(s: Setup, name: string) {
  const runner = await s.forge.registerRunner(
    s.machine.triplet.scope,
    name,
    runnerLabels(s.machine),
    undefined,
    undefined,
    s.machine.scaleSet,
  );
  return { id: runner.id, jit: runner.identity.JITCONFIG!.reveal() };
}

Deno.test("a job assigned through the queue is demand; a runner of the scale set takes it", async () => {
  await withScaleSet({}, async (s) => {
    const listener = await s.listening();
    const [scaleSet] = s.double.scaleSets();
    assert.equal(scaleSet!.name, "debian");
    assert.deepEqual(
      scaleSet!.labels.map((l) => l.toLowerCase()).sort(),
      runnerLabels(s.machine).map((l) => l.toLowerCase()).sort(),
    );
    assert.equal(s.assigned(), 0, "the session's statistics came first");
    const job = await s.queue();
    assert.equal(s.double.jobScaleSet(job.id), scaleSet!.id);
    // The capacity went with every poll.
    const polls = s.double.scaleSetRequests.filter((r) =>
      r.method === "GET" && r.path.includes("/msgqueue/")
    );
    assert.ok(polls.length > 0 && polls.every((r) => r.maxCapacity === 4));

    const runner = await register(s, "forrest-debian-1");
    assert.equal(
      (await standinCall(s.double, "online", runner.jit)).status,
      200,
    );
    assert.equal((await standinCall(s.double, "take", runner.jit)).status, 200);
    await s.double.waitFor(
      () => s.recorded.started.length === 1,
      10_000,
      "JobStarted",
    );
    assert.equal(s.recorded.started[0]!.runnerName, "forrest-debian-1");
    assert.equal(s.recorded.started[0]!.jobId, String(job.id));
    assert.equal(
      (await standinCall(s.double, "done?exit=0", runner.jit)).status,
      200,
    );
    await s.double.waitFor(() => s.assigned() === 0, 10_000, "assigned 0");
    assert.equal(s.double.job(job.id)!.conclusion, "success");

    await listener.stop();
    assert.deepEqual(s.double.openSessions(), [], "the session is deleted");
    await assert.rejects(
      Deno.stat(join(s.dir, "scale-sets/octo/app/debian.json")),
      Deno.errors.NotFound,
    );
  });
});

Deno.test("a session a crashed Forrest left is deleted at start; another listener's is waited out", async () => {
  await withScaleSet({}, async (s) => {
    // What a SIGKILL leaves: a session still open, its id on disk.
    const scope = s.machine.triplet.scope;
    const scaleSet = await s.forge.ensureScaleSet(scope, {
      name: "debian",
      runnerGroup: undefined,
      labels: runnerLabels(s.machine),
    });
    const left = await s.forge.openSession(scope, scaleSet.id, "host-a");
    const file = join(s.dir, "scale-sets/octo/app/debian.json");
    await Deno.mkdir(join(s.dir, "scale-sets/octo/app"), { recursive: true });
    await Deno.writeTextFile(
      file,
      JSON.stringify({ scaleSetId: scaleSet.id, sessionId: left.sessionId }),
    );
    const restarted = s.listener();
    restarted.start();
    await s.double.waitFor(
      () =>
        s.double.openSessions().length === 1 &&
        s.double.openSessions()[0]!.sessionId !== left.sessionId,
      10_000,
      "a new session",
    );
    const conflicts = () =>
      s.double.scaleSetRequests.filter((r) =>
        r.path.endsWith("/sessions") && r.status === 409
      );
    assert.deepEqual(conflicts(), [], "no 409: the old session was deleted");

    // Another host's listener of the same scale set (same name and group):
    // 409 until the session is gone, then it gets in.
    await Deno.remove(join(s.dir, "scale-sets"), { recursive: true });
    const other = s.listener("host-b");
    other.start();
    await s.double.waitFor(() => conflicts().length >= 2, 10_000, "409s");
    await restarted.stop();
    await s.double.waitFor(
      () => s.double.openSessions().some((x) => x.ownerName === "host-b"),
      10_000,
      "host-b's session",
    );
  });
});

Deno.test("expired tokens are renewed: the queue's by a refresh, the admin's by a new registration", async () => {
  await withScaleSet({}, async (s) => {
    await s.listening();
    const count = (which: (r: { method: string; path: string }) => boolean) =>
      s.double.scaleSetRequests.filter(which).length;
    const refreshes = () =>
      s.double.scaleSetRequests.filter((r) =>
        r.method === "PATCH" && r.path.includes("/sessions/") &&
        r.status === 200
      ).length;
    const registrations = () =>
      count((r) => r.path.endsWith("/actions/runner-registration"));
    assert.equal(refreshes(), 0);
    const registered = registrations();
    s.double.expireScaleSetTokens("queue");
    s.double.expireScaleSetTokens("admin");
    await s.queue();
    // The message came on the poll that was open; its acknowledgement
    // needs the new tokens.
    await s.double.waitFor(
      () =>
        s.double.scaleSetRequests.some((r) =>
          r.method === "DELETE" && r.path.includes("/msgqueue/") &&
          r.status === 204
        ),
      10_000,
      "the message acknowledged",
    );
    assert.equal(refreshes(), 1, "one PATCH of the session");
    assert.ok(registrations() > registered, "a new admin connection");
    assert.equal(s.double.openSessions().length, 1, "the same one session");
  });
});

Deno.test("5xx, an empty 200 and a hung queue are tried again on the same session", async () => {
  await withScaleSet({}, async (s) => {
    await s.listening();
    const session = s.double.openSessions()[0]!.sessionId;
    const queue = (r: { method: string; path: string }) =>
      r.method === "GET" && r.path.includes("/msgqueue/");
    s.double.failScaleSetNext(2, { status: 503, body: "unavailable" }, queue);
    s.double.failScaleSetNext(1, { status: 200, body: "" }, queue);
    s.double.failScaleSetNext(1, {
      status: 500,
      body: { typeName: "System.Exception", message: "boom" },
    }, queue);
    s.double.failScaleSetNext(1, { status: 202, delayMs: 3_000 }, queue);
    // Every fault is met before the job comes (the poll open now is not
    // one of them).
    const start = s.double.scaleSetRequests.length;
    const met = () =>
      s.double.scaleSetRequests.slice(start).filter(queue).map((r) => r.status);
    await s.double.waitFor(
      () => met().filter((x) => x !== 202).length >= 4 && met().length >= 6,
      20_000,
      "the faults met",
    );
    assert.deepEqual(met().filter((x) => x !== 202), [503, 503, 200, 500]);
    await s.queue(1, 20_000);
    assert.deepEqual(
      s.double.openSessions().map((x) => x.sessionId),
      [session],
      "no new session for a passing failure",
    );
    assert.ok(
      s.recorded.statistics.length >= 2,
      "the session's statistics, then the job's",
    );
  });
});

Deno.test("a message whose acknowledgement failed comes again and changes nothing twice", async () => {
  await withScaleSet({}, async (s) => {
    const listener = await s.listening();
    const acks = (r: { method: string; path: string }) =>
      r.method === "DELETE" && r.path.includes("/msgqueue/");
    s.double.failScaleSetNext(5, { status: 500, body: "ack failed" }, acks);
    await s.queue();
    // A restart (a new session): the unacknowledged message comes again.
    const before = s.recorded.statistics.length;
    await listener.stop();
    const again = s.listener();
    again.start();
    await s.double.waitFor(
      () =>
        s.double.scaleSetRequests.filter((r) => acks(r) && r.status === 204)
          .length === 1,
      10_000,
      "the message acknowledged after the restart",
    );
    assert.ok(s.recorded.statistics.length > before);
    assert.equal(s.assigned(), 1, "still one job: statistics replace");
  });
});

Deno.test("a scale set deleted on GitHub is made again, with a new session, message ids from the start", async () => {
  await withScaleSet({}, async (s) => {
    await s.listening();
    const old = s.double.scaleSets()[0]!.id;
    await s.queue();
    s.double.deleteScaleSet(old);
    await s.double.waitFor(
      () =>
        s.double.scaleSets().length === 1 &&
        s.double.scaleSets()[0]!.id !== old &&
        s.double.openSessions().length === 1,
      10_000,
      "a new scale set and session",
    );
    // Its job was assigned again, to the new scale set: demand again.
    await s.double.waitFor(() => s.assigned() === 1, 10_000, "assigned 1");
    const runner = await register(s, "forrest-debian-2");
    assert.equal(
      s.double.runners("octo", "app").find((r) => r.id === runner.id)
        ?.scaleSetId,
      s.double.scaleSets()[0]!.id,
      "generated in the new scale set",
    );
    assert.equal((await standinCall(s.double, "take", runner.jit)).status, 200);
    await s.double.waitFor(
      () => s.recorded.started.length === 1,
      10_000,
      "JobStarted from the new scale set",
    );
  });
});

Deno.test("on GHES, offered jobs are acquired before they are assigned", async () => {
  await withScaleSet({ mode: "ghes" }, async (s) => {
    await s.listening();
    const job = await s.queue();
    assert.ok(
      s.double.scaleSetRequests.some((r) =>
        r.path.endsWith("/acquirejobs") && r.status === 200 &&
        r.auth === "queue"
      ),
      "acquirejobs with the queue token",
    );
    assert.equal(s.double.jobScaleSet(job.id), s.double.scaleSets()[0]!.id);
  });
});

Deno.test("answers that start with a UTF-8 byte order mark are read", async () => {
  await withScaleSet({ bom: true }, async (s) => {
    await s.listening();
    await s.queue();
    const runner = await register(s, "forrest-debian-3");
    assert.ok(runner.id > 0);
  });
});

Deno.test("a scale set's runner is removed through the Actions service; a busy one is refused", async () => {
  await withScaleSet({}, async (s) => {
    await s.listening();
    const scope = s.machine.triplet.scope;
    const idle = await register(s, "forrest-debian-idle");
    await s.forge.deleteRunner(scope, idle.id);
    await s.forge.deleteRunner(scope, idle.id); // gone already: fine
    assert.ok(
      s.double.scaleSetRequests.some((r) =>
        r.method === "DELETE" &&
        r.path.endsWith(`/distributedtask/pools/0/agents/${idle.id}`) &&
        r.status === 204
      ),
    );
    await s.queue();
    const busy = await register(s, "forrest-debian-busy");
    assert.equal((await standinCall(s.double, "take", busy.jit)).status, 200);
    await assert.rejects(
      s.forge.deleteRunner(scope, busy.id),
      /JobStillRunningException/,
    );
    assert.deepEqual(
      s.double.runners("octo", "app").map((r) => r.name),
      ["forrest-debian-busy"],
    );
  });
});
