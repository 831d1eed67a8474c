import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../temp.ts";
import { GitHubDouble } from "./double.ts";
import { generateAppKey } from "./jwt.ts";
import { pingPayload } from "./payloads.ts";
import { startReceiver } from "./receiver.ts";
import { signBody } from "./webhooks.ts";

const SECRET = "webhook-secret";
const KEY = await generateAppKey();

function start(): Promise<GitHubDouble> {
  return GitHubDouble.start({
    appId: 1,
    privateKeyPem: KEY,
    webhookSecret: SECRET,
  });
}

Deno.test("webhooks reach a unix socket, signed unless told otherwise", async () => {
  await withTempDir(async (dir) => {
    const socket = join(dir, "forrest.sock");
    await using receiver = startReceiver(SECRET, socket);
    await using gh = await start();
    gh.setWebhookTarget({ unixSocket: socket });

    const ping = pingPayload();
    assert.equal(typeof ping.zen, "string");
    const answer = await gh.sendWebhook("ping", ping, { delivery: "d-1" });
    assert.deepEqual(answer, { status: 200, body: "thanks" });
    await gh.sendWebhook("ping", ping, { signature: "none" });
    await gh.sendWebhook("ping", ping, { signature: "wrong" });
    await gh.sendWebhook("ping", ping, { signature: { over: "{}" } });
    await gh.sendWebhook("ping", ping, { body: "not json" });

    const [valid, none, wrong, over, raw] = receiver.received;
    assert.deepEqual(
      [valid!.path, valid!.event, valid!.delivery, valid!.signed],
      ["/webhook", "ping", "d-1", true],
    );
    assert.equal(valid!.userAgent, "GitHub-Hookshot/double");
    assert.deepEqual(JSON.parse(valid!.body), ping);
    assert.equal(none!.signature, null);
    assert.equal(wrong!.signed, false);
    assert.equal(over!.signature, signBody(SECRET, "{}"));
    assert.equal(over!.signed, false);
    assert.deepEqual([raw!.body, raw!.signed], ["not json", true]);
    assert.match(none!.delivery ?? "", /^[0-9a-f-]{36}$/);
    assert.deepEqual(gh.deliveries.map((d) => d.status), [
      200,
      200,
      200,
      200,
      200,
    ]);
  });
});

Deno.test("a lost delivery is recorded, and the state change happens anyway", async () => {
  await using gh = await start();
  gh.addRepo("octo", "forrest");
  const job = await gh.queueJob({
    owner: "octo",
    repo: "forrest",
    labels: ["x"],
  });
  // A port nobody listens on: the receiver has just gone away.
  const gone = startReceiver(SECRET);
  await gone.close();
  gh.webhookTarget = { url: gone.url! };
  await gh.cancelJob(job.id);
  assert.deepEqual(
    [gh.job(job.id)?.status, gh.job(job.id)?.conclusion],
    ["completed", "cancelled"],
  );
  assert.deepEqual(
    gh.deliveries.map((d) => [d.action, d.status, d.error !== undefined]),
    [["queued", 0, true], ["completed", 0, true]],
  );
  assert.match(gh.deliveries[0]!.error!, /no webhook target/);
  await assert.rejects(gh.sendWebhook("ping", pingPayload()));
});
