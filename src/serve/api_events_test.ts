/**
 * `GET /events`: the status at once, again at each change (a job queued,
 * a job gone), nothing while nothing changes, and the end of the stream
 * when Forrest has stopped.
 */

import assert from "node:assert/strict";
import { withDaemon } from "../../tests/daemon.ts";
import { generateAppKey, signBody } from "../../tests/github/mod.ts";
import { type ServerSentEvent, sseEvents } from "../cli/status.ts";
import type { Status } from "../core/mod.ts";
import { apiApp } from "./api.ts";

const SECRET = "hush";

function delivery(action: "queued" | "completed") {
  const body = new TextEncoder().encode(JSON.stringify({
    action,
    workflow_job: {
      id: 77,
      status: action,
      labels: ["self-hosted", "forrest", "hil"],
      runner_name: null,
    },
    repository: { name: "lib", owner: { login: "acme" } },
  }));
  const headers = new Headers({
    "x-github-event": "workflow_job",
    "x-github-delivery": crypto.randomUUID(),
    "x-hub-signature-256": signBody(SECRET, body),
  });
  return [headers, body] as const;
}

// plugin-throttling starts its rate-limit groups, with cleanup intervals
// that live as long as the process, on the process's first request: make
// it on import, outside any test, so the sanitizers see only the test's.
await withDaemon({
  scopesToml: "",
  apiUrl: "http://127.0.0.1:9",
  appKey: await generateAppKey(),
  webhookSecret: SECRET,
}, async (_daemon, forge) => {
  await forge.listRunners({ kind: "repository", owner: "acme", repo: "lib" })
    .catch(() => {});
});

Deno.test("GET /events sends the status at once, at each change, and ends when Forrest stops", async () => {
  await withDaemon({
    // No image: a machine of the job waits for it (no VM is started).
    scopesToml: '[repositories.acme.lib.machines.hil]\nram = "1G"\n',
    apiUrl: "http://127.0.0.1:9",
    appKey: await generateAppKey(),
    webhookSecret: SECRET,
  }, async (daemon) => {
    const response = await apiApp(daemon).request("/events");
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const events = response.body!.pipeThrough(new TextDecoderStream())
      .pipeThrough(sseEvents()).getReader();
    const next = async (): Promise<Status> => {
      const { value, done } = await events.read();
      assert.ok(!done, "the stream goes on");
      assert.equal((value as ServerSentEvent).event, "status");
      return JSON.parse(value!.data) as Status;
    };
    assert.deepEqual((await next()).jobs, []);

    await daemon.webhook(...delivery("queued"));
    let status = await next();
    while (status.jobs.length === 0) status = await next();
    assert.equal(status.jobs[0]!.id, 77);

    await daemon.webhook(...delivery("completed"));
    while (status.jobs.length > 0) status = await next();

    // Quiet now: what comes next is the end, once Forrest has stopped.
    const ended = events.read();
    await daemon.stop();
    for (let read = await ended; !read.done; read = await events.read()) {
      assert.equal(read.value.event, "status");
    }
  });
});
