/**
 * VMs failing under `forrest serve`: qemu dying mid-job, qemu refusing to
 * start, and the image of a machine vanishing while Forrest runs. The
 * machine is stopped, its runner deleted, its disk removed (withServe
 * checks), the machine image untouched, and Forrest keeps serving.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pathExists } from "../src/host/mod.ts";
import { testDebianImage } from "./debian_image.ts";
import { processesUnder } from "./processes.ts";
import { LABELS, OWNER, REPO, runningJob, withServe } from "./serve.ts";
import { withTempDir } from "./temp.ts";

Deno.test("serve: qemu dying mid-job stops the machine and leaves the image alone", async () => {
  const image = await testDebianImage();
  await withServe({ image }, async (s) => {
    const { runner, runDir } = await runningJob(s, "sleep 600");
    const runnerId = s.double.runners(OWNER, REPO)[0]!.id;
    const [qemu] = await processesUnder(runDir);
    Deno.kill(qemu!, "SIGKILL");
    await s.waitForStatus((st) => st.machines.length === 0, 30_000, "gone");
    assert.match(s.log(), new RegExp(`"${runner}" stopped after \\d+ s`));
    assert.equal(
      await pathExists(join(s.baseDir, "machines", OWNER, REPO, "debian.img")),
      false,
      "nothing persisted",
    );
    assert.ok(await pathExists(join(runDir, "log.txt")), "the log stays");
    // GitHub still has the runner busy with the dead job; Forrest tried.
    assert.ok(
      s.double.requests.some((r) =>
        r.method === "DELETE" && r.path.endsWith(`/runners/${runnerId}`)
      ),
    );
  });
});

Deno.test("serve: qemu refusing to start: runner deleted, retried after a backoff", async () => {
  const image = await testDebianImage();
  // A 9p share whose folder does not exist: qemu exits at once.
  const broken = `
[repositories.${OWNER}.${REPO}.machines.broken]
base_image = "${image}"
ram = "1G"
shared = [{ path = "/nonexistent/forrest-share", tag = "share" }]
`;
  await withServe({ image, extraToml: broken }, async (s) => {
    const job = await s.double.queueJob({
      owner: OWNER,
      repo: REPO,
      labels: ["self-hosted", "forrest", "broken"],
    });
    await s.waitForLog("Cannot start", 60_000);
    await s.double.waitFor(
      () =>
        s.double.requests.filter((r) => r.method === "DELETE").length >= 1 &&
        s.double.runners(OWNER, REPO).length === 0,
      30_000,
      "the runner deleted",
    );
    // The job is still queued: after the backoff (10 s), a second try.
    await s.double.waitFor(
      () =>
        s.double.requests.filter((r) => r.path.endsWith("/generate-jitconfig"))
          .length >= 2,
      60_000,
      "a second registration after the backoff",
    );
    await s.double.cancelJob(job.id);
    await s.waitForStatus((st) => st.machines.length === 0, 60_000, "gone");
  });
});

Deno.test("serve: an image deleted while serving makes machines wait, not fail", async () => {
  const image = await testDebianImage();
  await withTempDir(async (dir) => {
    // The machine's base image is a symlink the test removes and restores.
    const link = join(dir, "debian.img");
    await Deno.symlink(image, link);
    await withServe({ image: link }, async (s) => {
      await Deno.remove(link);
      const job = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: LABELS,
        script: "true",
      });
      await s.waitForStatus(
        (st) =>
          st.machines[0]?.note?.startsWith("waiting for an image") ?? false,
        30_000,
        "the machine waiting for its image",
      );
      await Deno.symlink(image, link);
      await s.double.waitFor(
        () => s.double.job(job.id)?.status === "completed",
        240_000,
        "the job completed once the image was back",
      );
      await s.waitForStatus((st) => st.machines.length === 0, 60_000, "done");
    });
  }, "fi-");
});
