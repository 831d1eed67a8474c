/**
 * Scale-set discovery end to end under TCG (product.md §16): `forrest
 * serve` with `[github] discovery = "scale-set"` and no webhook at all
 * runs jobs that GitHub assigns through its message queue, on a warm
 * machine (min_idle = 1) and on a new one; two daemons whose scale sets
 * share a name in two runner groups share an organization's jobs, each
 * job run once, within each host's capacity, and no runner or session
 * left over.
 */

import assert from "node:assert/strict";
import { testDebianImage } from "./debian_image.ts";
import { generateAppKey, GitHubDouble, type Job } from "./github/mod.ts";
import {
  APP_ID,
  LABELS,
  OWNER,
  REPO,
  standinMachineToml,
  withServe,
} from "./serve.ts";

const JOB_TIMEOUT = 240_000;
const SCALE_SETS = 'discovery = "scale-set"';

const APP_KEY = await generateAppKey();

async function startDouble(): Promise<GitHubDouble> {
  return await GitHubDouble.start({
    appId: APP_ID,
    privateKeyPem: APP_KEY,
    webhookSecret: "never-used",
  });
}

Deno.test({
  name:
    "serve: with scale-set discovery and no webhook, jobs assigned through the queue run on a warm machine and on a new one",
  async fn() {
    const image = await testDebianImage();
    const double = await startDouble();
    try {
      double.addRepo(OWNER, REPO);
      const port = new URL(double.url).port;
      await withServe({
        image,
        double,
        appKey: APP_KEY,
        githubToml: SCALE_SETS,
        machineToml: "min_idle = 1",
        hostRam: "3G",
        extraToml: `
[repositories."${OWNER}"."${REPO}".machines.cold]
${standinMachineToml(image, port)}scale_set = "octo-cold"
`,
      }, async (s) => {
        // Nothing reaches Forrest from outside: webhooks go nowhere.
        double.setWebhookTarget(undefined);
        const warm = await s.waitForStatus(
          (st) => st.machines.some((m) => m.state === "warm"),
          JOB_TIMEOUT,
          "a warm machine",
        );
        const warmRunner = warm.machines.find((m) => m.state === "warm")!
          .runner;
        assert.deepEqual(
          double.scaleSets().map((x) => x.name).sort(),
          ["debian", "octo-cold"],
        );
        const onWarm = await double.queueJob({
          owner: OWNER,
          repo: REPO,
          labels: LABELS,
          script: "echo on the warm machine",
        });
        const onNew = await double.queueJob({
          owner: OWNER,
          repo: REPO,
          labels: ["self-hosted", "forrest", "cold"],
          script: "echo on a new machine",
        });
        await double.waitFor(
          () =>
            [onWarm, onNew].every((j) =>
              double.job(j.id)?.status === "completed"
            ),
          JOB_TIMEOUT,
          "both jobs completed",
        );
        for (const job of [onWarm, onNew]) {
          assert.equal(double.job(job.id)!.conclusion, "success");
        }
        assert.equal(double.job(onWarm.id)!.runnerName, warmRunner);
        assert.match(double.job(onNew.id)!.runnerName!, /^forrest-cold-/);
        const bySet = new Map(double.scaleSets().map((x) => [x.name, x.id]));
        assert.equal(double.jobScaleSet(onWarm.id), bySet.get("debian"));
        assert.equal(double.jobScaleSet(onNew.id), bySet.get("octo-cold"));
        // Runners came from the scale sets, not the REST API's JIT.
        const generated = double.scaleSetRequests.filter((r) =>
          r.path.endsWith("/generatejitconfig") && r.status === 200
        );
        assert.ok(generated.length >= 2);
        assert.ok(
          !double.requests.some((r) => r.path.endsWith("/generate-jitconfig")),
        );
        // Each ended machine's runner is removed through the Actions
        // service (gone already, as ephemeral runners go after their job).
        const runnerIds = [onWarm, onNew].map((j) =>
          double.job(j.id)!.runnerId
        );
        await double.waitFor(
          () =>
            runnerIds.every((id) =>
              double.scaleSetRequests.some((r) =>
                r.method === "DELETE" &&
                r.path.endsWith(`/distributedtask/pools/0/agents/${id}`)
              )
            ),
          60_000,
          "the runners removed",
        );
        assert.ok(
          !double.requests.some((r) =>
            r.method === "DELETE" && r.path.includes("/actions/runners/")
          ),
          "no runner deleted through the REST API",
        );
        assert.ok(
          double.deliveries.every((d) => d.status === 0),
          "no webhook was delivered",
        );
        assert.doesNotMatch(s.log(), /Job \d+ of \S+ is queued/);
        const status = await s.status();
        assert.deepEqual(
          status.scaleSets.map((x) => [x.name, x.triplet, x.assigned]),
          [["debian", "octo/app/debian", 0], ["octo-cold", "octo/app/cold", 0]],
        );
        const metrics = await (await s.fetch("/metrics")).text();
        assert.match(
          metrics,
          /^forrest_scale_set_capacity\{scale_set="octo-cold",machine="octo\/app\/cold"\} [1-3]$/m,
        );
        // Registration, admin and queue tokens and JIT configs are secrets.
        const secrets = double.issuedSecrets;
        assert.ok(secrets.length > 4);
        for (const secret of secrets) {
          assert.ok(!s.log().includes(secret), "a secret in the log");
        }
        await s.waitForLog(`job "${onNew.id}" of "octo/app" started on`);
        await double.waitFor(
          () =>
            double.runners(OWNER, REPO).every((r) => r.status === "offline"),
          60_000,
          "the jobs' runners gone",
        );
      });
      assert.deepEqual(double.openSessions(), [], "sessions deleted at stop");
      assert.deepEqual(
        double.runners(OWNER, REPO),
        [],
        "no runner left over (the warm machine's refill had none)",
      );
    } finally {
      await double.close();
    }
  },
});

Deno.test({
  name:
    "serve: two daemons with scale sets of one name in two runner groups share jobs, each run once",
  async fn() {
    const image = await testDebianImage();
    const double = await startDouble();
    try {
      double.addOrg("acme");
      double.addRepo("acme", "app");
      double.addRunnerGroup({ org: "acme" }, "host-a");
      double.addRunnerGroup({ org: "acme" }, "host-b");
      const port = new URL(double.url).port;
      const host = (group: string) => ({
        image,
        double,
        appKey: APP_KEY,
        githubToml: SCALE_SETS,
        repositoryMachine: false,
        // Room for one machine: at most one job at a time per host.
        hostRam: "1G",
        extraToml: `
[organizations.acme.machines.ci]
${standinMachineToml(image, port)}runner_group = "${group}"
scale_set = "forrest-ci"
`,
      });
      await withServe(host("host-a"), async (a) => {
        await withServe(host("host-b"), async (b) => {
          double.setWebhookTarget(undefined);
          await double.waitFor(
            () => double.openSessions().length === 2,
            30_000,
            "both hosts' sessions",
          );
          const jobs: Job[] = [];
          for (let i = 1; i <= 3; i++) {
            jobs.push(
              await double.queueJob({
                owner: "acme",
                repo: "app",
                labels: ["self-hosted", "forrest", "ci"],
                script: `echo job ${i}`,
              }),
            );
          }
          await double.waitFor(
            () => jobs.every((j) => double.job(j.id)?.status === "completed"),
            2 * JOB_TIMEOUT,
            "all jobs completed",
          );
          const runners = jobs.map((j) => double.job(j.id)!.runnerName);
          assert.equal(new Set(runners).size, 3, "each job its own runner");
          for (const job of jobs) {
            assert.equal(double.job(job.id)!.conclusion, "success");
          }
          const groups = jobs.map((j) => double.job(j.id)!.runnerGroupName);
          assert.ok(groups.includes("host-a") && groups.includes("host-b"));
          // Each host started only its own runners' jobs.
          for (
            const [daemon, group] of [[a, "host-a"], [b, "host-b"]] as const
          ) {
            const mine = jobs.filter((j) =>
              double.job(j.id)!.runnerGroupName === group
            );
            for (const job of mine) {
              await daemon.waitForLog(
                `job "${job.id}" of "acme/app" started on`,
              );
            }
          }
          await double.waitFor(
            () => double.runnersOf({ org: "acme" }).length === 0,
            60_000,
            "no runner left over",
          );
        });
      });
      assert.deepEqual(double.openSessions(), []);
    } finally {
      await double.close();
    }
  },
});
