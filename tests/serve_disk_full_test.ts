/**
 * A full disk under `forrest serve` (base_dir on a small tmpfs): forking
 * fails with a clear error and leaves no partial files; persisting fails
 * the same way, leaving the machine image as it was; Forrest goes on
 * serving. Needs root to mount the tmpfs.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runChecked } from "../src/host/mod.ts";
import { testDebianImage } from "./debian_image.ts";
import { filesUnder } from "./processes.ts";
import { LABELS, OWNER, REPO, TOKEN, withServe } from "./serve.ts";
import { withTempDir } from "./temp.ts";

/** Fills the file system of `dir` to the last byte. */
async function fill(path: string): Promise<void> {
  const file = await Deno.open(path, { create: true, write: true });
  const chunk = new Uint8Array(1024 * 1024).fill(1);
  try {
    for (;;) await file.write(chunk);
  } catch (error) {
    if (!String(error).includes("No space left")) throw error;
    const small = new Uint8Array(512);
    try {
      for (;;) await file.write(small);
    } catch { /* full */ }
  } finally {
    file.close();
  }
}

Deno.test({
  name:
    "serve: a full disk fails forks and persists cleanly, and serving goes on",
  ignore: Deno.uid() !== 0,
  async fn() {
    const image = await testDebianImage();
    await withTempDir(async (mnt) => {
      await runChecked("mount", [
        "-t",
        "tmpfs",
        "-o",
        "size=96m",
        "tmpfs",
        mnt,
      ]);
      try {
        await withServe({ image, baseDir: mnt }, async (s) => {
          const filler = join(mnt, "filler");
          await fill(filler);
          const first = await s.double.queueJob({
            owner: OWNER,
            repo: REPO,
            labels: LABELS,
            script: `echo ${TOKEN} > ~/config/persist`,
          });
          await s.waitForLog("No space left on device", 60_000);
          assert.match(s.log(), /Cannot start "forrest-debian-/);
          await s.waitForStatus(
            (st) => st.machines.length === 0,
            30_000,
            "gone",
          );
          const partial = (await filesUnder(join(mnt, "runs")).catch(() => []))
            .filter((f) => !/\/(log\.txt|output\.txt|run\.json)$/.test(f));
          assert.deepEqual(partial, [], "no partial files of the failed fork");

          // Room for a run, not for persisting a 4 GiB image.
          await Deno.remove(filler);
          await s.double.waitFor(
            () => s.double.job(first.id)?.status === "completed",
            240_000,
            "the job ran once there was room",
          );
          await s.waitForLog("Cannot persist", 60_000);
          await s.waitForStatus(
            (st) => st.machines.length === 0,
            60_000,
            "done",
          );
          const machines = await filesUnder(join(mnt, "machines")).catch(
            () => [],
          );
          assert.deepEqual(machines, [], "no image and no temp file");

          // Still serving: a job that does not persist runs as usual.
          const second = await s.double.queueJob({
            owner: OWNER,
            repo: REPO,
            labels: LABELS,
            script: "true",
          });
          await s.double.waitFor(
            () => s.double.job(second.id)?.status === "completed",
            240_000,
            "the next job completed",
          );
          await s.waitForStatus(
            (st) => st.machines.length === 0,
            60_000,
            "done",
          );
        });
      } finally {
        await runChecked("umount", [mnt]);
      }
    }, "fd-");
  },
});
