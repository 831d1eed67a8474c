/**
 * Deliveries at every scope reach the core through the daemon: an
 * enterprise's job is known by the enterprise its delivery names, and stays
 * tracked when a later delivery (from a repository hook) does not name it.
 */

import assert from "node:assert/strict";
import { withDaemon } from "../../tests/daemon.ts";
import { generateAppKey, signBody } from "../../tests/github/mod.ts";

const SECRET = "hush";

function delivery(
  action: "queued" | "in_progress" | "completed",
  enterprise: string | undefined,
) {
  const body = new TextEncoder().encode(JSON.stringify({
    action,
    workflow_job: {
      id: 41,
      status: action,
      labels: ["self-hosted", "forrest", "hil"],
      runner_name: action === "queued" ? null : "someone-else",
    },
    repository: { name: "lib", owner: { login: "acme" } },
    ...(enterprise ? { enterprise: { slug: enterprise } } : {}),
  }));
  const headers = new Headers({
    "x-github-event": "workflow_job",
    "x-github-delivery": crypto.randomUUID(),
    "x-hub-signature-256": signBody(SECRET, body),
  });
  return [headers, body] as const;
}

Deno.test("daemon: an enterprise's job is known by its delivery, and stays known without it", async () => {
  await withDaemon({
    scopesToml: '[enterprises.megacorp.machines.hil]\nbase_image = "x.img"\n',
    apiUrl: "http://127.0.0.1:9",
    appKey: await generateAppKey(),
    webhookSecret: SECRET,
  }, async (daemon) => {
    // Without the enterprise, no scope serves acme/lib.
    assert.equal(
      (await daemon.webhook(...delivery("queued", undefined))).outcome,
      "unconfigured",
    );
    assert.equal(
      (await daemon.webhook(...delivery("queued", "megacorp"))).outcome,
      "accepted",
    );
    assert.equal(
      daemon.status().jobs[0]?.triplet,
      "enterprises/megacorp/hil",
    );
    // A repository hook's delivery of the same job, without the enterprise.
    assert.equal(
      (await daemon.webhook(...delivery("completed", undefined))).outcome,
      "accepted",
    );
    assert.deepEqual(daemon.status().jobs, []);
  });
});
