/**
 * No secret leaks: a full job, persisted, with logging at debug level. The
 * App's private key, the installation tokens and JIT configs GitHub handed
 * out, the webhook secret, the persistence token and the run's guest API
 * token appear nowhere in the daemon's log, its /status or its /metrics.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { testDebianImage } from "./debian_image.ts";
import { filesUnder } from "./processes.ts";
import {
  LABELS,
  OWNER,
  REPO,
  TOKEN,
  WEBHOOK_SECRET,
  withServe,
} from "./serve.ts";

Deno.test("serve: no secret in the debug log, /status or /metrics", async () => {
  const image = await testDebianImage();
  await withServe(
    { image, env: { FORREST_LOG: "debug" } },
    async (s) => {
      const job = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: LABELS,
        script: `echo ${TOKEN} > ~/config/persist; ` +
          `echo "run-token=$(cat ~/config/run-token)"`,
      });
      await s.double.waitFor(
        () => s.double.job(job.id)?.status === "completed",
        240_000,
        "the job completed",
      );
      await s.waitForLog("persisted its disk");
      await s.waitForStatus((st) => st.machines.length === 0, 60_000, "done");
      const status = await (await s.fetch("/status")).text();
      const metrics = await (await s.fetch("/metrics")).text();
      const log = s.log();
      assert.match(log, /\[DBG\]/, "debug logging is on");
      // The run token, as the guest saw it (its output stays in the run's
      // folder).
      const outputs = (await filesUnder(s.baseDir)).filter((f) =>
        f.endsWith("/output.txt")
      );
      assert.equal(outputs.length, 1);
      const runToken = /run-token=([A-Za-z0-9]{32})\b/.exec(
        await Deno.readTextFile(join(s.baseDir, outputs[0]!)),
      )?.[1];
      assert.ok(runToken, "the guest read a run token");

      // The PEM's body, line by line: any part of the key is a leak.
      const keyLines = s.privateKeyPem.split("\n")
        .filter((line) => line.length >= 40 && !line.startsWith("-----"));
      const secrets: [string, string][] = [
        ["webhook secret", WEBHOOK_SECRET],
        ["persistence token", TOKEN],
        ["run token", runToken],
        ...keyLines.map((line): [string, string] => ["private key", line]),
        ...s.double.issuedSecrets.map((x): [string, string] => [
          "GitHub token or JIT config",
          x,
        ]),
      ];
      assert.ok(
        s.double.issuedSecrets.length >= 3,
        "the double issued a token and a JIT config",
      );
      for (const [what, secret] of secrets) {
        for (
          const [where, text] of [["log", log], ["/status", status], [
            "/metrics",
            metrics,
          ]]
        ) {
          assert.ok(!text!.includes(secret), `the ${what} appears in ${where}`);
        }
      }
    },
  );
});
