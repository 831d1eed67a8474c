/**
 * A job's whole life through `forrest serve`, end to end under TCG: the
 * GitHub double queues jobs and sends webhooks, Forrest registers JIT
 * runners and boots the Debian image of `forrest image build debian`, the
 * stand-in runner in the guest takes the job and reports back over a
 * forwarded port, and Forrest cleans up and persists.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Status } from "../src/core/mod.ts";
import { runForrest } from "./cli.ts";
import { testDebianImage } from "./debian_image.ts";
import type { Job } from "./github/mod.ts";
import { LABELS, OWNER, REPO, TOKEN, withServe } from "./serve.ts";

const JOB_TIMEOUT = 240_000;
const inBudget = (status: Status) =>
  status.machines.filter((m) =>
    ["starting", "waiting", "running", "stopping"].includes(m.state)
  ).length;

Deno.test({
  name:
    "serve: a queued job gets a JIT runner and a VM; the image persists only with the token",
  sanitizeResources: true,
  async fn() {
    const image = await testDebianImage();
    await withServe({ image }, async (s) => {
      const imagePath = join(s.baseDir, "machines", OWNER, REPO, "debian.img");
      const job = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: LABELS,
        script: `sleep 3; echo ${TOKEN} > ~/config/persist`,
      });
      await s.double.waitFor(
        () => s.double.runners(OWNER, REPO).length > 0,
        30_000,
        "a runner registered",
      );
      const runner = s.double.runners(OWNER, REPO)[0]!;
      assert.match(runner.name, /^forrest-debian-[a-z0-9]{16}$/);
      assert.deepEqual(runner.labels, ["self-hosted", "forrest", "debian"]);
      assert.equal(runner.runnerGroupId, 1);
      const running = await s.waitForStatus(
        (st) => st.machines.some((m) => m.state === "running"),
        JOB_TIMEOUT,
        "the machine running its job",
      );
      assert.equal(running.machines[0]!.runner, runner.name);
      assert.equal(running.machines[0]!.job, job.id);
      assert.equal(running.machines[0]!.triplet, `${OWNER}/${REPO}/debian`);
      await s.double.waitFor(
        () => s.double.job(job.id)?.status === "completed",
        JOB_TIMEOUT,
        "the job completed",
      );
      assert.equal(s.double.job(job.id)!.conclusion, "success");
      assert.equal(s.double.job(job.id)!.runnerName, runner.name);
      await s.waitForStatus(
        (st) => st.machines.length === 0 && st.jobs.length === 0,
        60_000,
        "the machine gone",
      );
      assert.deepEqual(s.double.runners(OWNER, REPO), [], "runner deleted");
      const persisted = await Deno.stat(imagePath);
      await s.waitForLog("persisted its disk");

      // A job that writes something else to persist: the image stays. It
      // also looks for the double, which listens on the host's loopback,
      // where qemu's user network would find it, and fails if it can: the
      // guest reaches only its forward (product.md §14).
      const port = new URL(s.double.url).port;
      const hostUrls = ["10.0.2.2", "10.0.2.100", "[fec0::2]"].map((host) =>
        `http://${host}:${port}/`
      );
      const second = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: LABELS,
        script: `for url in ${hostUrls.join(" ")}; do
          if curl -s -m 5 -o /dev/null "$url"; then echo "reached $url"; exit 1; fi
        done
        code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' http://10.0.2.100/)
        [ "$code" != 000 ] || exit 2
        echo not-the-token > ~/config/persist`,
      });
      await s.double.waitFor(
        () => s.double.job(second.id)?.status === "completed",
        JOB_TIMEOUT,
        "the second job completed",
      );
      assert.equal(
        s.double.job(second.id)!.conclusion,
        "success",
        "the guest reached the host's loopback, or not its forward",
      );
      await s.waitForStatus(
        (st) => st.machines.length === 0,
        60_000,
        "the second machine gone",
      );
      const after = await Deno.stat(imagePath);
      assert.equal(after.ino, persisted.ino, "image not replaced");
      assert.equal(after.mtime?.getTime(), persisted.mtime?.getTime());
      await s.waitForLog("does not hold the repository's persistence token");

      // The second run booted the persisted image (own, newer than the base).
      const metrics = await (await s.fetch("/metrics")).text();
      assert.match(metrics, /^forrest_job_pickup_seconds_count 2$/m);
      assert.match(metrics, /^forrest_vm_boot_seconds_count 2$/m);
      assert.match(
        metrics,
        /^forrest_webhooks_total\{outcome="accepted"\} \d+$/m,
      );
      assert.match(metrics, /^forrest_machines\{state="running"\} 0$/m);
    });
  },
});

Deno.test({
  name:
    "serve: a repository with the longest owner and name GitHub allows runs its job under a 60-byte base_dir",
  async fn() {
    const image = await testDebianImage();
    const owner = "long-owner-".padEnd(39, "o");
    const repo = "a.long_repository-name-".padEnd(100, "r");
    await withServe({ image, owner, repo, baseDirLength: 60 }, async (s) => {
      assert.equal(s.baseDir.length, 60);
      const job = await s.double.queueJob({ owner, repo, labels: LABELS });
      await s.double.waitFor(
        () => s.double.job(job.id)?.status === "completed",
        JOB_TIMEOUT,
        "the job completed",
      );
      assert.equal(s.double.job(job.id)!.conclusion, "success");
      await s.waitForStatus((st) => st.machines.length === 0, 60_000, "done");
      // Its run directory, far deeper than a socket path may be, kept its log.
      const runner = s.double.job(job.id)!.runnerName!;
      const runDir = join(s.baseDir, "runs", owner, repo, "debian", runner);
      assert.ok(runDir.length > 107);
      assert.ok((await Deno.stat(join(runDir, "log.txt"))).isFile);
    });
  },
});

Deno.test({
  name:
    "serve: with RAM for two machines, three jobs start two VMs, the third when one ends",
  async fn() {
    const image = await testDebianImage();
    await withServe({ image, hostRam: "2G" }, async (s) => {
      const jobs: Job[] = [];
      for (let i = 0; i < 3; i++) {
        jobs.push(
          await s.double.queueJob({
            owner: OWNER,
            repo: REPO,
            labels: LABELS,
            script: "sleep 2",
          }),
        );
      }
      let most = 0;
      let sawWaitingThird = false;
      await s.waitForStatus(
        (st) => {
          most = Math.max(most, inBudget(st));
          if (
            inBudget(st) === 2 &&
            st.machines.some((m) => m.state === "registered")
          ) sawWaitingThird = true;
          return jobs.every((j) => s.double.job(j.id)?.status === "completed");
        },
        JOB_TIMEOUT * 2,
        "three jobs completed",
      );
      assert.equal(most, 2, "never more than two VMs");
      assert.ok(sawWaitingThird, "the third machine waited for the budget");
      for (const job of jobs) {
        assert.equal(s.double.job(job.id)!.conclusion, "success");
      }
      await s.waitForStatus((st) => st.machines.length === 0, 60_000, "done");
    });
  },
});

Deno.test({
  name: "serve: a lost webhook is picked up by the poller",
  async fn() {
    const image = await testDebianImage();
    await withServe({ image, pollingInterval: "5s" }, async (s) => {
      const job = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: LABELS,
        webhook: false,
      });
      await s.double.waitFor(
        () => s.double.job(job.id)?.status === "completed",
        JOB_TIMEOUT,
        "the job completed",
      );
      await s.waitForLog(
        `Job ${job.id} of "${OWNER}"/"${REPO}": "queued", "found" by the poller`,
      );
      await s.waitForStatus((st) => st.machines.length === 0, 60_000, "done");
    });
  },
});

Deno.test({
  name:
    "serve: a job cancelled before its VM started kills the machine and deletes its runner",
  async fn() {
    const image = await testDebianImage();
    // `later` has no image yet: its machine registers and waits for one.
    const extraToml = `
[repositories.${OWNER}.${REPO}.machines.later]
base_image = "images/not-built-yet.img"
ram = "1G"
`;
    await withServe({ image, extraToml }, async (s) => {
      // Left over from a crash: offline, idle, named like ours. The janitor
      // (every 2 s here) deletes it; a runner not named like ours stays.
      s.double.addRunner(OWNER, REPO, "forrest-later-leftover12345678", LABELS);
      s.double.addRunner(OWNER, REPO, "someone-elses-runner", LABELS);
      await s.double.waitFor(
        () => s.double.runners(OWNER, REPO).length === 1,
        10_000,
        "the leftover runner deleted",
      );
      assert.equal(
        s.double.runners(OWNER, REPO)[0]!.name,
        "someone-elses-runner",
      );
      assert.equal((await Deno.stat(s.socket)).mode! & 0o777, 0o660);
      const job = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: ["self-hosted", "forrest", "later"],
      });
      // Its runner registers while it looks for its image.
      await s.waitForStatus(
        (st) =>
          st.machines[0]?.state === "registered" &&
          (st.machines[0]?.note?.includes("waiting for an image") ?? false),
        30_000,
        "the machine registered, waiting for its image",
      );
      assert.equal(s.double.runners(OWNER, REPO).length, 2);

      // forrest status shows it, as a table and as JSON.
      const table = await runForrest(["status", "--config", s.configFile]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^RAM 0B of 4G, CPUs 0$/m);
      assert.match(
        table.stdout,
        new RegExp(
          `^octo/app/later +forrest-later-[a-z0-9]{16} +registered +\\d+s +waiting for an image`,
          "m",
        ),
      );
      assert.match(
        table.stdout,
        new RegExp(`^${job.id} +octo/app/later +queued`, "m"),
      );
      const json = await runForrest(["status", "--json", "-c", s.configFile]);
      assert.equal(json.code, 0, json.stderr);
      assert.equal(JSON.parse(json.stdout).jobs[0].id, job.id);

      await s.double.cancelJob(job.id);
      await s.waitForStatus(
        (st) => st.machines.length === 0 && st.jobs.length === 0,
        30_000,
        "the machine killed",
      );
      await s.double.waitFor(
        () => s.double.runners(OWNER, REPO).length === 1,
        10_000,
        "the runner deleted",
      );
      await s.waitForLog("Killing");
    });
  },
});

Deno.test({
  name:
    "serve: a config reload applies to new machines; a broken one is refused",
  async fn() {
    // `later` has no image: its machines register and wait, no VM starts.
    const later = `
[repositories.${OWNER}.${REPO}.machines.later]
base_image = "images/not-built-yet.img"
ram = "1G"
`;
    await withServe({
      image: "/nonexistent/debian.img",
      extraToml: later,
    }, async (s) => {
      const first = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: ["self-hosted", "forrest", "later"],
      });
      await s.waitForStatus((st) => st.machines.length === 1, 30_000, "one");
      const original = await Deno.readTextFile(s.configFile);
      await Deno.writeTextFile(
        s.configFile,
        original.replace(
          'base_image = "images/not-built-yet.img"',
          'base_image = "images/not-built-yet.img"\nlabels = ["gpu"]',
        ),
      );
      await s.waitForLog("Reloaded config file");
      const second = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: ["self-hosted", "forrest", "later", "GPU"],
      });
      await s.waitForStatus((st) => st.machines.length === 2, 30_000, "two");
      // A machine is in the status before its runner is registered.
      await s.double.waitFor(
        () => s.double.runners(OWNER, REPO).length === 2,
        30_000,
        "two runners registered",
      );
      const labels = s.double.runners(OWNER, REPO).map((r) =>
        r.labels.join(",")
      )
        .sort();
      assert.deepEqual(labels, [
        "self-hosted,forrest,later",
        "self-hosted,forrest,later,gpu",
      ]);

      // A broken file: reported once, the config in force stays.
      const broken = original.replace('ram = "1G"', 'ram = "lots"');
      await Deno.writeTextFile(s.configFile, broken);
      await s.waitForLog("keeping the config in force");
      const reports = () =>
        s.log().split("keeping the config in force").length - 1;
      // Saved again unchanged: not reported again.
      for (let i = 0; i < 2; i++) {
        await Deno.writeTextFile(s.configFile, broken);
        await new Promise((resolve) => setTimeout(resolve, 700));
      }
      assert.equal(reports(), 1, "logged once per version of the file");
      // Changed, still broken: reported again.
      await Deno.writeTextFile(s.configFile, `${broken}\n# still broken\n`);
      await s.waitForStatus(() => reports() === 2, 10_000, "a second report");
      assert.equal((await s.status()).machines.length, 2);
      assert.match(s.log(), /ram: cannot parse size "lots"|ram:.*lots/);

      await s.double.cancelJob(first.id);
      await s.double.cancelJob(second.id);
      await s.waitForStatus((st) => st.machines.length === 0, 30_000, "none");
    });
  },
});
