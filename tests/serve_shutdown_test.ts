/**
 * Stopping `forrest serve`: the first SIGTERM stops machines without a job
 * and lets running jobs finish; a second one stops those too. Either way
 * Forrest exits 0 and leaves no VM, disk or socket (withServe checks).
 */

import assert from "node:assert/strict";
import { testDebianImage } from "./debian_image.ts";
import { LABELS, OWNER, REPO, runningJob, withServe } from "./serve.ts";

/** A machine type with no image yet: it registers, then waits. */
const LATER = `
[repositories.${OWNER}.${REPO}.machines.later]
base_image = "images/not-built-yet.img"
ram = "1G"
`;

Deno.test("serve: SIGTERM lets a running job finish and stops the idle machines", async () => {
  const image = await testDebianImage();
  await withServe({ image, extraToml: LATER }, async (s) => {
    const busy = await s.double.queueJob({
      owner: OWNER,
      repo: REPO,
      labels: LABELS,
      script: "sleep 15",
    });
    await s.double.queueJob({
      owner: OWNER,
      repo: REPO,
      labels: ["self-hosted", "forrest", "later"],
    });
    await s.waitForStatus(
      (st) =>
        st.machines.some((m) => m.state === "running") &&
        st.machines.some((m) => m.state === "registered"),
      240_000,
      "one machine running its job, one waiting for its image",
    );
    s.kill("SIGTERM");
    await s.waitForLog("Waiting up to 600 s for 1 running job(s) to finish");
    await s.double.waitFor(
      () =>
        s.double.runners(OWNER, REPO).every((r) => r.name.includes("debian")),
      10_000,
      "the idle machine's runner deleted",
    );
    const status = await s.exited;
    assert.equal(status.code, 0);
    assert.equal(s.double.job(busy.id)!.status, "completed");
    assert.equal(s.double.job(busy.id)!.conclusion, "success");
    assert.deepEqual(s.double.runners(OWNER, REPO), []);
    assert.doesNotMatch(s.log(), /still run a job/);
  });
});

Deno.test("serve: a second SIGTERM stops a running job at once", async () => {
  const image = await testDebianImage();
  await withServe({ image }, async (s) => {
    const { job } = await runningJob(s, "sleep 600");
    s.kill("SIGTERM");
    await s.waitForLog("running job(s) to finish");
    const hurried = Date.now();
    s.kill("SIGTERM");
    const status = await s.exited;
    assert.equal(status.code, 0);
    assert.ok(Date.now() - hurried < 30_000, "stopped promptly");
    assert.match(s.log(), /Stopping 1 machine\(s\) that still run a job/);
    // The job never finished: GitHub will fail it once the runner is gone.
    assert.equal(s.double.job(job.id)!.status, "in_progress");
  });
});
