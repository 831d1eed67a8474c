/**
 * Crash recovery: `forrest serve` is killed with SIGKILL while a VM runs a
 * job. The new one stops the VM the old one left and its helpers (network,
 * TPM), deletes its disk and its copy of the TPM state (logs stay), removes a half-done persist's temp file without touching the
 * machine image and the temporary file of an upload the crash cut off,
 * deletes the dead runner, and serves new jobs as usual.
 */

import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { pathExists } from "../src/host/mod.ts";
import { runForrest } from "./cli.ts";
import { testDebianImage } from "./debian_image.ts";
import { processesUnder } from "./processes.ts";
import { LABELS, OWNER, REPO, runningJob, withServe } from "./serve.ts";

Deno.test("serve: after a crash, the next start stops leftover VMs and cleans up", async () => {
  const image = await testDebianImage();
  await withServe({
    image,
    machineToml:
      `artifacts = [{ path = "store/<RUNNER_NAME>", url = "https://ci.example.org/", quota = "1M" }]`,
  }, async (s) => {
    // The machine has a TPM: its swtpm is one more process a crash leaves.
    const init = await runForrest([
      "tpm",
      "init",
      `${OWNER}/${REPO}/debian`,
      "--base-dir",
      s.baseDir,
    ]);
    assert.equal(init.code, 0, init.stderr);
    const { job, runner, runDir } = await runningJob(s, "sleep 600");
    // An upload that the crash will cut off, and one that was done.
    const store = join(s.configFile, "..", "store", runner);
    await Deno.mkdir(store, { recursive: true });
    const upload = join(store, ".forrest-upload-0123456789abcdef");
    await Deno.writeTextFile(upload, "half an upload");
    await Deno.writeTextFile(join(store, "done.txt"), "a whole upload");
    const runnerId = s.double.runners(OWNER, REPO)[0]!.id;
    // A persist that died half-way left a temp file beside the image.
    const machines = join(s.baseDir, "machines", OWNER, REPO);
    await Deno.mkdir(machines, { recursive: true });
    const image_ = join(machines, "debian.img");
    await Deno.writeTextFile(image_, "the machine image, whole");
    const temp = join(machines, ".debian.img.tmp-4f2a");
    await Deno.writeTextFile(temp, "half a new image");

    // qemu, and its helpers (pasta, swtpm), which a crash leaves too.
    const before = await processesUnder(runDir);
    const programs = await Promise.all(
      before.map((pid) => Deno.readLink(`/proc/${pid}/exe`)),
    );
    // pasta's binary is passt (passt.avx2 where the CPU has AVX2).
    assert.deepEqual(
      programs.map((path) => basename(path).replace(/^passt.*/, "pasta"))
        .sort(),
      ["pasta", "qemu-system-x86_64", "swtpm"],
    );
    assert.ok(await pathExists(join(runDir, "tpm.swtpm")));
    await s.crashAndRestart();
    assert.match(s.log(), /Stopping qemu \d+ of "forrest-debian-/);
    assert.deepEqual(await processesUnder(runDir), [], "the old VM stopped");
    const left = (await Array.fromAsync(Deno.readDir(runDir)))
      .map((e) => e.name).sort();
    assert.deepEqual(left.filter((n) => n.startsWith("disk")), []);
    assert.ok(left.includes("log.txt"), "the boot log stays");
    assert.ok(!left.includes("tpm.swtpm"), "the TPM state copy is deleted");
    assert.ok(left.includes("tpm.log"), "swtpm's log stays");
    assert.equal(await pathExists(temp), false, "persist temp file removed");
    assert.equal(await pathExists(upload), false, "cut-off upload removed");
    assert.equal(
      await Deno.readTextFile(join(store, "done.txt")),
      "a whole upload",
    );
    assert.equal(await Deno.readTextFile(image_), "the machine image, whole");
    // The dead runner is deleted once GitHub no longer has it busy; here
    // the double keeps it busy, so Forrest has at least tried.
    await s.double.waitFor(
      () =>
        s.double.requests.some((r) =>
          r.method === "DELETE" && r.path.endsWith(`/runners/${runnerId}`)
        ),
      15_000,
      "the dead runner's deletion tried",
    );
    await Deno.remove(image_); // let the next job boot the base image

    // Serving goes on: a new job gets a new machine and completes.
    const next = await s.double.queueJob({
      owner: OWNER,
      repo: REPO,
      labels: LABELS,
      script: "true",
    });
    await s.double.waitFor(
      () => s.double.job(next.id)?.status === "completed",
      240_000,
      "the next job completed",
    );
    assert.equal(s.double.job(job.id)!.status, "in_progress");
  });
});
