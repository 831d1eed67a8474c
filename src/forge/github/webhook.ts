/**
 * GitHub webhook deliveries: the signature is checked over the raw bytes
 * before anything is parsed, in constant time; then the JSON is read with
 * a schema that takes only what Forrest uses.
 */

import { createHmac, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import { type JobReport, TRACKED_JOB_STATUSES } from "../../core/mod.ts";
import type { Secret } from "../../log/mod.ts";
import type { WebhookResult } from "../forge.ts";

const SIGNATURE_RE = /^sha256=([0-9a-f]{64})$/;

/** Whether `header` is `sha256=<HMAC-SHA256 of body with secret>`. */
export function verifySignature(
  secret: Secret,
  body: Uint8Array,
  header: string | null,
): boolean {
  const match = header === null ? null : SIGNATURE_RE.exec(header.trim());
  if (!match) return false;
  const expected = createHmac("sha256", secret.reveal()).update(body).digest();
  const given = Uint8Array.from(
    match[1]!.match(/../g)!,
    (byte) => parseInt(byte, 16),
  );
  return timingSafeEqual(expected, given);
}

/** Only the fields Forrest reads; GitHub sends many more. */
const WorkflowJobEvent = z.object({
  action: z.string(),
  workflow_job: z.object({
    id: z.number().int().positive(),
    status: z.enum([...TRACKED_JOB_STATUSES, "completed"]),
    labels: z.array(z.string().max(1_000)).max(1_000),
    runner_name: z.string().max(1_000).nullable().optional(),
    created_at: z.string().optional(),
  }),
  repository: z.object({
    name: z.string().min(1).max(100),
    owner: z.object({ login: z.string().min(1).max(100) }),
  }),
  // Present in deliveries of enterprise hooks, and of repositories and
  // organizations that belong to an enterprise.
  enterprise: z.object({ slug: z.string().min(1).max(100) }).nullish(),
});

/** Verifies and reads one delivery. */
export function parseGitHubWebhook(
  secret: Secret,
  headers: Headers,
  body: Uint8Array,
): WebhookResult {
  const signature = headers.get("x-hub-signature-256");
  if (signature === null) {
    return {
      kind: "unauthorized",
      message: "no X-Hub-Signature-256 header",
    };
  }
  if (!verifySignature(secret, body, signature)) {
    return {
      kind: "unauthorized",
      message: "X-Hub-Signature-256 does not match the body and the secret",
    };
  }
  const event = headers.get("x-github-event") ?? "";
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch (error) {
    return { kind: "invalid", message: `body is not JSON: ${String(error)}` };
  }
  if (event === "ping") return { kind: "ping" };
  if (event !== "workflow_job") return { kind: "ignored", event };
  const parsed = WorkflowJobEvent.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return {
      kind: "invalid",
      message: `workflow_job: ${
        issue.path.join(".") || "body"
      }: ${issue.message}`,
    };
  }
  const { workflow_job: job, repository, action, enterprise } = parsed.data;
  const createdAt = job.created_at ? Date.parse(job.created_at) : NaN;
  const report: JobReport = {
    id: job.id,
    owner: repository.owner.login,
    repo: repository.name,
    status: action === "completed" ? "completed" : job.status,
    labels: job.labels,
    runnerName: job.runner_name ?? null,
    ...(Number.isFinite(createdAt) ? { createdAt } : {}),
    ...(enterprise ? { enterprise: enterprise.slug } : {}),
  };
  const delivery = headers.get("x-github-delivery") ?? undefined;
  const disagreement = disagreementOf(action, job.status);
  return {
    kind: "job",
    delivery,
    report,
    ...(disagreement === undefined ? {} : { disagreement }),
  };
}

/** Actions that name the job's status when the delivery was made. */
const STATUS_ACTIONS: readonly string[] = ["queued", "waiting", "in_progress"];

/**
 * How a delivery's action and its job's status disagree, if they do.
 * GitHub has sent `queued` for a job whose status was `waiting` (an
 * environment's approval gate; the recorded delivery of
 * lineville/elastic-machines-testing): which of the two still holds is
 * for the API to say.
 */
function disagreementOf(action: string, status: string): string | undefined {
  if (!STATUS_ACTIONS.includes(action) || action === status) return undefined;
  return `action "${action}" with status "${status}"`;
}
