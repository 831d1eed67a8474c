/**
 * No secret leaks: a full job, persisted, with logging at debug level. The
 * App's private key, the installation tokens and JIT configs GitHub handed
 * out, the webhook secret and the persistence token appear nowhere in the
 * daemon's log, its /status or its /metrics.
 */

import assert from "node:assert/strict";
import { testDebianImage } from "./debian_image.ts";
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
        script: `echo ${TOKEN} > ~/config/persist`,
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

      // The PEM's body, line by line: any part of the key is a leak.
      const keyLines = s.privateKeyPem.split("\n")
        .filter((line) => line.length >= 40 && !line.startsWith("-----"));
      const secrets: [string, string][] = [
        ["webhook secret", WEBHOOK_SECRET],
        ["persistence token", TOKEN],
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
