/**
 * Deliveries at every scope reach the core through the daemon: an
 * enterprise's job is known by the enterprise its delivery names, and stays
 * tracked when a later delivery (from a repository hook) does not name it.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import { GitHubForge } from "../forge/mod.ts";
import { GuestApi } from "../guest_api/mod.ts";
import { Secret } from "../log/mod.ts";
import { generateAppKey, signBody } from "../../tests/github/mod.ts";
import { withTempDir } from "../../tests/temp.ts";
import { Daemon } from "./daemon.ts";

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
  await withTempDir(async (dir) => {
    const config = parseConfig(
      `[host]
base_dir = "${dir}"
ram = "4G"
[enterprises.megacorp.machines.hil]
base_image = "x.img"
`,
      { file: "forrest.toml", cwd: dir },
    );
    const forge = new GitHubForge({
      app: { appId: 1, privateKey: new Secret(await generateAppKey()) },
      webhookSecret: new Secret(SECRET),
      apiUrl: "http://127.0.0.1:9",
    });
    const guestApi = new GuestApi();
    const daemon = new Daemon({ config, forge, guestApi });
    try {
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
    } finally {
      await daemon.stop();
    }
  });
});
