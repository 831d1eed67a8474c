/**
 * `POST /webhook` of a running `forrest serve`, delivered by the GitHub
 * double: every bad delivery gets its documented status code, and none of
 * them leads to an API call or a change of state.
 */

import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { workflowJobPayload } from "./github/mod.ts";
import {
  LABELS,
  OWNER,
  REPO,
  type Serving,
  WEBHOOK_SECRET,
  withServe,
} from "./serve.ts";

const REPOSITORY = {
  id: 1,
  owner: OWNER,
  ownerId: 2,
  name: REPO,
  installationId: 3,
};

function queued(id: number, repository = REPOSITORY) {
  return workflowJobPayload("queued", {
    id,
    run_id: 77,
    status: "queued",
    labels: LABELS,
    runner_id: null,
    runner_name: null,
  }, repository);
}

/** What must not change: the daemon's jobs and machines, and API calls. */
async function snapshot(s: Serving) {
  const status = await s.status();
  return {
    jobs: status.jobs.map((j) => j.id),
    machines: status.machines.length,
    apiCalls: s.double.requests.length,
  };
}

Deno.test("serve: bad webhooks get their status code and change nothing", async () => {
  // No VM starts here: the image does not exist, and no job is queued.
  await withServe({
    image: "/nonexistent/debian.img",
    janitorInterval: "10m",
  }, async (s) => {
    const before = await snapshot(s);
    const body = JSON.stringify(queued(501));
    const cases: {
      name: string;
      send: () => Promise<{ status: number; body: string }>;
      status: number;
    }[] = [
      {
        name: "no signature",
        send: () =>
          s.double.sendWebhook("workflow_job", queued(501), {
            signature: "none",
          }),
        status: 401,
      },
      {
        name: "a wrong signature",
        send: () =>
          s.double.sendWebhook("workflow_job", queued(501), {
            signature: "wrong",
          }),
        status: 401,
      },
      {
        name: "a signature over a different body",
        send: () =>
          s.double.sendWebhook("workflow_job", queued(501), {
            signature: { over: JSON.stringify(queued(502)) },
          }),
        status: 401,
      },
      {
        name: "a 5 MiB body",
        send: () =>
          s.double.sendWebhook("workflow_job", null, {
            body: body + " ".repeat(5 * 1024 * 1024),
          }),
        status: 413,
      },
      {
        name: "invalid JSON",
        send: () =>
          s.double.sendWebhook("workflow_job", null, {
            body: body.slice(0, -10),
          }),
        status: 400,
      },
      {
        name: "a workflow_job with the wrong shape",
        send: () =>
          s.double.sendWebhook("workflow_job", {
            ...queued(501),
            workflow_job: { id: "501", labels: "debian" },
          }),
        status: 400,
      },
      {
        name: "an event Forrest does not use",
        send: () => s.double.sendWebhook("push", { ref: "refs/heads/main" }),
        status: 204,
      },
      {
        name: "a repository that is not configured",
        send: () =>
          s.double.sendWebhook(
            "workflow_job",
            queued(503, { ...REPOSITORY, name: "other" }),
          ),
        status: 204,
      },
    ];
    for (const c of cases) {
      const answer = await c.send();
      assert.equal(answer.status, c.status, `${c.name}: ${answer.body}`);
      assert.deepEqual(await snapshot(s), before, c.name);
    }

    const ping = await s.double.sendWebhook("ping", { zen: "Keep it simple." });
    assert.equal(ping.status, 200);

    // A redelivery is ignored: the same delivery id saying "completed"
    // leaves the job queued.
    const first = await s.double.sendWebhook("workflow_job", queued(600), {
      delivery: "delivery-600",
    });
    assert.equal(first.status, 202);
    assert.deepEqual((await snapshot(s)).jobs, [600]);
    const again = await s.double.sendWebhook(
      "workflow_job",
      workflowJobPayload("completed", {
        id: 600,
        run_id: 77,
        status: "completed",
        labels: LABELS,
      }, REPOSITORY),
      { delivery: "delivery-600" },
    );
    assert.equal(again.status, 204);
    assert.deepEqual((await snapshot(s)).jobs, [600]);
    assert.equal(s.double.requests.length, before.apiCalls);

    const metrics = await (await s.fetch("/metrics")).text();
    for (
      const [outcome, n] of [
        ["unauthorized", 3],
        ["too_large", 1],
        ["invalid", 2],
        ["ignored", 1],
        ["unconfigured", 1],
        ["ping", 1],
        ["accepted", 1],
        ["duplicate", 1],
      ] as const
    ) {
      assert.match(
        metrics,
        new RegExp(
          `^forrest_webhooks_total\\{outcome="${outcome}"\\} ${n}$`,
          "m",
        ),
      );
    }
    // Anything but POST /webhook, GET /status and GET /metrics is not found.
    assert.equal((await s.fetch("/webhook")).status, 404);
    assert.equal((await s.fetch("/nothing")).status, 404);
  });
});

Deno.test("serve: a reload applies a new webhook secret; a broken one keeps the old", async () => {
  // No VM starts here: pings only, and the image does not exist.
  await withServe({
    image: "/nonexistent/debian.img",
    janitorInterval: "10m",
  }, async (s) => {
    const dir = dirname(s.configFile);
    const ping = (secret: string) =>
      s.double.sendWebhook("ping", { zen: "Rotate." }, { secret });
    const accepts = async (good: string, refused: string[]) => {
      assert.equal((await ping(good)).status, 200, `${good} is accepted`);
      for (const old of refused) {
        assert.equal((await ping(old)).status, 401, `${old} is refused`);
      }
    };
    const reloads = (text: string) => s.log().split(text).length - 1;
    const waitForReloads = (text: string, n: number) =>
      s.waitForStatus(() => reloads(text) === n, 10_000, `${n}× "${text}"`);
    const RELOADED = "Reloaded the webhook secret";
    await accepts(WEBHOOK_SECRET, []);

    // The same file, a new secret in it: SIGHUP (systemctl reload).
    const rotated = "rotated-secret-in-the-same-file";
    await Deno.writeTextFile(join(dir, "webhook-secret"), `${rotated}\n`);
    s.kill("SIGHUP");
    await waitForReloads(RELOADED, 1);
    await accepts(rotated, [WEBHOOK_SECRET]);

    // The config names another file: the change of the config reloads it.
    const moved = "secret-in-another-file";
    await Deno.writeTextFile(join(dir, "webhook-secret-2"), moved);
    const original = await Deno.readTextFile(s.configFile);
    const config = (secretLine: string) =>
      original.replace('webhook_secret_file = "webhook-secret"', secretLine);
    await Deno.writeTextFile(
      s.configFile,
      config('webhook_secret_file = "webhook-secret-2"'),
    );
    await waitForReloads(RELOADED, 2);
    await accepts(moved, [rotated, WEBHOOK_SECRET]);

    // Broken: the file emptied, then a config naming a missing file. Both
    // are reported; the secret in force stays.
    const BROKEN = "keeping the config and webhook secret in force";
    await Deno.writeTextFile(join(dir, "webhook-secret-2"), "");
    s.kill("SIGHUP");
    await waitForReloads(BROKEN, 1);
    await accepts(moved, [rotated]);
    await Deno.writeTextFile(
      s.configFile,
      config('webhook_secret_file = "no-such-file"'),
    );
    await waitForReloads(BROKEN, 2);
    assert.match(s.log(), /webhook-secret-2 is empty/);
    assert.match(s.log(), /Cannot read the webhook secret file .*no-such-file/);
    await accepts(moved, [rotated]);

    // An inline secret in the config.
    const inline = "inline-secret-in-the-config";
    await Deno.writeTextFile(
      s.configFile,
      config(`webhook_secret = "${inline}"`),
    );
    await waitForReloads(RELOADED, 3);
    await accepts(inline, [moved, WEBHOOK_SECRET]);

    assert.doesNotMatch(s.log(), /restart only/);
    for (const secret of [WEBHOOK_SECRET, rotated, moved, inline]) {
      assert.ok(!s.log().includes(secret), `${secret} is not logged`);
    }
  });
});
