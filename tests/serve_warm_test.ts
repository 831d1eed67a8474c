/**
 * Warm machines end to end under TCG (product.md §13): with `min_idle = 1`
 * a machine boots with no runner and waits; a job takes it (its runner is
 * registered and its JOBDATA hot-plugged, no boot), a new warm machine
 * boots after it, and the job's persist replaces the warm machine that
 * booted the old image.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Status, StatusMachine } from "../src/core/mod.ts";
import { testDebianImage } from "./debian_image.ts";
import { LABELS, OWNER, REPO, TOKEN, withServe } from "./serve.ts";

const BOOT_TIMEOUT = 240_000;

const warm = (status: Status): StatusMachine[] =>
  status.machines.filter((m) => m.state === "warm");

Deno.test({
  name:
    "serve: min_idle = 1 keeps a warm machine; a job takes it without a boot, a new one boots, a persist replaces it",
  async fn() {
    const image = await testDebianImage();
    await withServe(
      { image, machineToml: "min_idle = 1", hostRam: "3G" },
      async (s) => {
        const first = warm(
          await s.waitForStatus(
            (st) => warm(st).length === 1,
            BOOT_TIMEOUT,
            "a warm machine",
          ),
        )[0]!;
        assert.equal(first.job, null);
        assert.deepEqual(s.double.runners(OWNER, REPO), [], "no runner yet");
        const metrics = await (await s.fetch("/metrics")).text();
        assert.match(metrics, /^forrest_machines\{state="warm"\} 1$/m);

        const queuedAt = performance.now();
        const job = await s.double.queueJob({
          owner: OWNER,
          repo: REPO,
          labels: LABELS,
          script: `echo ${TOKEN} > ~/config/persist`,
        });
        await s.double.waitFor(
          () => s.double.job(job.id)?.status === "completed",
          BOOT_TIMEOUT,
          "the job completed",
        );
        assert.equal(s.double.job(job.id)!.conclusion, "success");
        assert.equal(
          s.double.job(job.id)!.runnerName,
          first.runner,
          "the warm machine took the job",
        );
        console.log(
          `queued → completed on the warm machine: ${
            Math.round(performance.now() - queuedAt)
          } ms`,
        );
        await s.waitForLog("persisted its disk", BOOT_TIMEOUT);

        // The machine that booted after the take booted the base image;
        // the persist made the machine's own image newer: it is replaced.
        await s.waitForLog("changed since it booted", 60_000);
        const replaced = await s.waitForStatus(
          (st) =>
            warm(st).length === 1 &&
            !st.machines.some((m) => m.note === "killed: stale-image") &&
            st.machines.length === 1,
          BOOT_TIMEOUT,
          "a warm machine of the persisted image",
        );
        const last = warm(replaced)[0]!;
        assert.notEqual(last.runner, first.runner);
        const log = s.log();
        const started = [
          ...log.matchAll(/Started "(forrest-[^"]+)" from "([^"]+)"/g),
        ]
          .map(([, runner, from]) => ({ runner, from }));
        assert.equal(started.length, 3, "warm, its refill, its replacement");
        const own = join(s.baseDir, "machines", OWNER, REPO, "debian.img");
        assert.equal(started[0]!.from, image);
        assert.equal(started[1]!.from, image);
        assert.equal(started[2]!.runner, last.runner);
        assert.equal(started[2]!.from, own);
        assert.match(log, /Killing "\S+" \("stale-image"\)/);
        assert.deepEqual(s.double.runners(OWNER, REPO), [], "runners deleted");
      },
    );
  },
});
