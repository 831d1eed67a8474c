/**
 * Webhook payloads built from the deliveries recorded in
 * `@octokit/webhooks-examples`, patched with the double's facts, so Forrest
 * is tested against what GitHub really sends rather than what we think it
 * sends.
 */

import { fileURLToPath } from "node:url";

type Json = Record<string, unknown>;

interface RecordedEvent {
  readonly name: string;
  readonly examples: Json[];
}

let recorded: RecordedEvent[] | undefined;

/** The recorded examples of one event (read once, 4 MB). */
function examplesOf(event: string): Json[] {
  recorded ??= JSON.parse(Deno.readTextFileSync(fileURLToPath(
    import.meta.resolve("@octokit/webhooks-examples"),
  ))) as RecordedEvent[];
  const found = recorded.find((e) => e.name === event);
  if (!found) throw new Error(`No recorded "${event}" webhook examples`);
  return found.examples;
}

/** A recorded `ping` delivery. */
export function pingPayload(): Json {
  return structuredClone(examplesOf("ping")[0]!);
}

export type WorkflowJobAction =
  | "queued"
  | "waiting"
  | "in_progress"
  | "completed";

/** The repository and installation a payload is about. */
export interface PayloadRepository {
  readonly id: number;
  readonly owner: string;
  readonly ownerId: number;
  readonly name: string;
  readonly installationId: number;
}

/**
 * A `workflow_job` delivery: the recorded example for `action` (one with an
 * installation if there is one), its `workflow_job` overwritten with
 * `workflowJob` (the job as the REST API shows it; steps dropped), and its
 * repository, owner and installation replaced.
 */
export function workflowJobPayload(
  action: WorkflowJobAction,
  workflowJob: Json,
  repository: PayloadRepository,
): Json {
  const candidates = examplesOf("workflow_job").filter((e) =>
    e.action === action
  );
  const example = candidates.find((e) => "installation" in e) ??
    candidates[0];
  if (!example) throw new Error(`No recorded workflow_job.${action} example`);
  const payload = structuredClone(example);
  payload.workflow_job = {
    ...(payload.workflow_job as Json),
    ...workflowJob,
    steps: [],
  };
  const { owner, name } = repository;
  const repo = payload.repository as Json;
  Object.assign(repo, {
    id: repository.id,
    name,
    full_name: `${owner}/${name}`,
    html_url: `https://github.com/${owner}/${name}`,
    url: `https://api.github.com/repos/${owner}/${name}`,
  });
  Object.assign(repo.owner as Json, {
    login: owner,
    id: repository.ownerId,
    html_url: `https://github.com/${owner}`,
  });
  if (typeof payload.organization === "object" && payload.organization) {
    Object.assign(payload.organization, {
      login: owner,
      id: repository.ownerId,
    });
  }
  payload.installation = {
    id: repository.installationId,
    node_id: btoa(`Installation${repository.installationId}`),
  };
  return payload;
}
