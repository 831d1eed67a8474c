/**
 * `forrest status --watch` against a running `forrest serve`: the status
 * at once, again when a job comes (its machine waits for an image that is
 * not there, so no VM boots) and when it is cancelled, and a clear end
 * when the daemon stops. No terminal here: each status is printed after
 * the last, with its time.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startForrest, StreamText } from "./cli.ts";
import { LABELS, OWNER, REPO, withServe } from "./serve.ts";

Deno.test("forrest status --watch follows the daemon: a job's machine comes and goes, then the daemon stops", async () => {
  await withServe({ image: "/nonexistent/debian.img" }, async (s) => {
    const watch = startForrest(
      ["status", "--watch", "--config", s.configFile],
      { cwd: join(s.configFile, "..") },
    );
    watch.stdin.close();
    const out = new StreamText(watch.stdout);
    const err = new StreamText(watch.stderr);
    try {
      await out.until("No machines.");
      const job = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: LABELS,
      });
      // Its machine: the machine table names its runner.
      await out.until("forrest-debian-");
      const frames = () => out.text.split(/^--- \d\d:\d\d:\d\d$/m);
      assert.match(frames().at(-1)!, /^RAM /m);
      const before = out.text.length;
      await s.double.cancelJob(job.id);
      await out.until("No machines.", before);
      assert.ok(frames().length >= 4, "one status per change");
      s.kill("SIGTERM");
      await s.exited;
      assert.equal((await watch.status).code, 1);
      await err.rest();
      assert.match(err.text, /forrest serve ended the stream \(it stopped\)/);
    } finally {
      try {
        watch.kill("SIGTERM");
      } catch { /* ended */ }
      await watch.status;
      await out.cancel().catch(() => {});
      await err.cancel().catch(() => {});
    }
  });
});
