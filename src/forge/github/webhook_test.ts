/**
 * Webhook verification and reading, against every `workflow_job` and
 * `ping` delivery recorded in @octokit/webhooks-examples.
 */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { fileURLToPath } from "node:url";
import { Secret } from "../../log/mod.ts";
import { parseGitHubWebhook, verifySignature } from "./webhook.ts";

const SECRET = new Secret("It's a Secret to Everybody");
type Json = Record<string, unknown>;

function recorded(event: string): Json[] {
  const all = JSON.parse(Deno.readTextFileSync(fileURLToPath(
    import.meta.resolve("@octokit/webhooks-examples"),
  ))) as { name: string; examples: Json[] }[];
  return all.find((e) => e.name === event)!.examples;
}

function sign(body: Uint8Array | string, secret = SECRET.reveal()): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

function headers(event: string, signature: string | null): Headers {
  const h = new Headers({ "X-GitHub-Event": event, "X-GitHub-Delivery": "d1" });
  if (signature !== null) h.set("X-Hub-Signature-256", signature);
  return h;
}

Deno.test("GitHub's documented example signature verifies", () => {
  // From GitHub's docs on validating webhook deliveries.
  const body = new TextEncoder().encode("Hello, World!");
  assert.ok(verifySignature(
    SECRET,
    body,
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
  ));
});

Deno.test("every recorded workflow_job delivery is read", () => {
  const examples = recorded("workflow_job");
  assert.ok(examples.length >= 8);
  for (const example of examples) {
    const body = new TextEncoder().encode(JSON.stringify(example));
    const result = parseGitHubWebhook(
      SECRET,
      headers("workflow_job", sign(body)),
      body,
    );
    assert.equal(result.kind, "job", JSON.stringify(result));
    if (result.kind !== "job") continue;
    const job = example.workflow_job as Json;
    const repository = example.repository as {
      name: string;
      owner: { login: string };
    };
    assert.equal(result.delivery, "d1");
    assert.equal(result.report.id, job.id);
    assert.equal(result.report.repo, repository.name);
    assert.equal(result.report.owner, repository.owner.login);
    assert.deepEqual(result.report.labels, job.labels);
    assert.equal(
      result.report.status,
      example.action === "completed" ? "completed" : job.status,
    );
    assert.equal(result.report.runnerName, job.runner_name ?? null);
  }
});

Deno.test("parseGitHubWebhook() says when a delivery's action and status disagree", () => {
  const seen = recorded("workflow_job").map((example) => {
    const body = new TextEncoder().encode(JSON.stringify(example));
    const result = parseGitHubWebhook(
      SECRET,
      headers("workflow_job", sign(body)),
      body,
    );
    assert.equal(result.kind, "job");
    if (result.kind !== "job") throw new Error("unreachable");
    const repository = example.repository as { full_name: string };
    return [
      repository.full_name,
      example.action,
      result.report.status,
      result.disagreement,
    ];
  }).filter(([, , , disagreement]) => disagreement !== undefined);
  // Only GitHub's recorded `queued` delivery of a job that was `waiting`
  // (for an environment's approval): its status stays what it said, and
  // the daemon asks the API which holds.
  assert.deepEqual(seen, [[
    "lineville/elastic-machines-testing",
    "queued",
    "waiting",
    'action "queued" with status "waiting"',
  ]]);
});

Deno.test("ping and other events are signed too, then answered or ignored", () => {
  for (const example of recorded("ping")) {
    const body = new TextEncoder().encode(JSON.stringify(example));
    assert.deepEqual(
      parseGitHubWebhook(SECRET, headers("ping", sign(body)), body),
      {
        kind: "ping",
      },
    );
  }
  const body = new TextEncoder().encode("{}");
  assert.deepEqual(
    parseGitHubWebhook(SECRET, headers("push", sign(body)), body),
    {
      kind: "ignored",
      event: "push",
    },
  );
  assert.equal(
    parseGitHubWebhook(SECRET, headers("ping", null), body).kind,
    "unauthorized",
  );
});

Deno.test("bad signatures are refused before the body is read", () => {
  const body = new TextEncoder().encode("not even JSON");
  const cases: [string | null, string][] = [
    [null, "no X-Hub-Signature-256 header"],
    ["", "does not match"],
    ["sha256=", "does not match"],
    ["sha1=" + "0".repeat(40), "does not match"],
    [sign(body).toUpperCase(), "does not match"],
    [sign("another body"), "does not match"],
    [sign(body, "another secret"), "does not match"],
    [sign(body).slice(0, -2), "does not match"],
  ];
  for (const [signature, message] of cases) {
    const result = parseGitHubWebhook(
      SECRET,
      headers("workflow_job", signature),
      body,
    );
    assert.equal(result.kind, "unauthorized", String(signature));
    assert.match((result as { message: string }).message, new RegExp(message));
  }
});

Deno.test("signed but unreadable deliveries are invalid, with where", () => {
  const example = recorded("workflow_job")[0]!;
  const cases: [string | Uint8Array, RegExp][] = [
    ["{", /not JSON/],
    [new Uint8Array([0x7b, 0xff, 0x7d]), /not JSON/],
    [
      JSON.stringify({
        ...example,
        workflow_job: { ...(example.workflow_job as Json), id: "1" },
      }),
      /workflow_job\.id/,
    ],
    [
      JSON.stringify({
        ...example,
        workflow_job: { ...(example.workflow_job as Json), labels: "x" },
      }),
      /workflow_job\.labels/,
    ],
    [
      JSON.stringify({
        ...example,
        workflow_job: { ...(example.workflow_job as Json), status: "exploded" },
      }),
      /workflow_job\.status/,
    ],
    [JSON.stringify({ ...example, repository: null }), /repository/],
    ["[]", /body/],
  ];
  for (const [text, where] of cases) {
    const body = typeof text === "string"
      ? new TextEncoder().encode(text)
      : text;
    const result = parseGitHubWebhook(
      SECRET,
      headers("workflow_job", sign(body)),
      body,
    );
    assert.equal(result.kind, "invalid", String(text).slice(0, 40));
    assert.match((result as { message: string }).message, where);
  }
});
