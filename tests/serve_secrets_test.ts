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

/** The first event of a server-sent event stream of the daemon's API. */
async function firstEvent(socket: string, path: string): Promise<string> {
  const client = Deno.createHttpClient({
    proxy: { transport: "unix", path: socket },
  });
  try {
    const response = await fetch(`http://forrest${path}`, { client });
    const reader = response.body!.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (!text.includes("\n\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    await reader.cancel();
    return text;
  } finally {
    client.close();
  }
}

Deno.test("serve: no secret in the debug log, /status, /metrics or the dashboard", async () => {
  const image = await testDebianImage();
  await withServe(
    { image, env: { FORREST_LOG: "debug" } },
    async (s) => {
      const job = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: LABELS,
        // The run token on the console too: the dashboard's boot log must
        // blank it.
        script: `echo ${TOKEN} > ~/config/persist; ` +
          `echo "run-token=$(cat ~/config/run-token)"; ` +
          `echo "console-token=$(cat ~/config/run-token)" | ` +
          `sudo tee /dev/console >/dev/null; sleep 5`,
      });
      const running = await s.waitForStatus(
        (st) => st.machines.some((m) => m.state === "running"),
        240_000,
        "the job running",
      );
      const runner = running.machines[0]!.runner;
      let bootLog = "";
      const deadline = Date.now() + 30_000;
      while (!bootLog.includes("console-token=") && Date.now() < deadline) {
        const answer = await s.fetch(`/machines/${runner}/log`);
        bootLog = await answer.text();
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.match(bootLog, /console-token=\[secret\]/);
      const page = await (await s.fetch("/")).text();
      const view = await firstEvent(s.socket, "/dashboard/events");
      assert.match(view, /^event: view$/m);
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
          const [where, text] of [
            ["log", log],
            ["/status", status],
            ["/metrics", metrics],
            ["the dashboard", page],
            ["the dashboard's view", view],
            ["the boot log", bootLog],
          ]
        ) {
          assert.ok(!text!.includes(secret), `the ${what} appears in ${where}`);
        }
      }
    },
  );
});
