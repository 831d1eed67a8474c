/**
 * The double's state as the REST API shows it. Runs, jobs and installations
 * have many required fields, so they start from the OpenAPI description's
 * own examples and get the double's ids, names, statuses and times.
 */

import type { OpenApi } from "./openapi.ts";
import {
  type Job,
  type Repo,
  type Run,
  runConclusion,
  type Runner,
  type RunnerGroup,
  type RunnerScope,
  runStatus,
} from "./state.ts";

type Json = Record<string, unknown>;

/** Where the REST API lives (the double's URL) and where the web UI would. */
export interface Urls {
  readonly api: string;
  readonly web: string;
}

export function runnerResource(
  runner: Runner,
  labelId: (name: string) => number,
): Json {
  return {
    id: runner.id,
    name: runner.name,
    os: "Linux",
    status: runner.status,
    busy: runner.busy,
    ephemeral: true,
    runner_group_id: runner.runnerGroupId,
    labels: runner.labels.map((name) => ({
      id: labelId(name),
      name,
      type: name.toLowerCase() === "self-hosted" ? "read-only" : "custom",
    })),
  };
}

export function jobResource(api: OpenApi, job: Job, urls: Urls): Json {
  const repo = `${job.owner}/${job.repo}`;
  return {
    ...api.example("job"),
    id: job.id,
    node_id: btoa(`WorkflowJob${job.id}`),
    run_id: job.runId,
    run_url: `${urls.api}/repos/${repo}/actions/runs/${job.runId}`,
    run_attempt: 1,
    url: `${urls.api}/repos/${repo}/actions/jobs/${job.id}`,
    html_url: `${urls.web}/${repo}/actions/runs/${job.runId}/job/${job.id}`,
    check_run_url: `${urls.api}/repos/${repo}/check-runs/${job.id}`,
    name: job.name,
    status: job.status,
    conclusion: job.conclusion,
    created_at: job.createdAt,
    // GitHub shows a queued job as started when it was created.
    started_at: job.startedAt ?? job.createdAt,
    completed_at: job.completedAt,
    steps: [],
    labels: [...job.labels],
    runner_id: job.runnerId,
    runner_name: job.runnerName,
    runner_group_id: job.runnerGroupId,
    runner_group_name: job.runnerGroupName,
    workflow_name: "CI",
    head_branch: "main",
  };
}

export function runResource(
  api: OpenApi,
  run: Run,
  jobs: readonly Job[],
  urls: Urls,
): Json {
  const example = api.example("workflow-run");
  const repo = `${run.owner}/${run.repo}`;
  const runUrl = `${urls.api}/repos/${repo}/actions/runs/${run.id}`;
  const updated = jobs.map((j) => j.completedAt ?? j.startedAt ?? j.createdAt)
    .reduce((a, b) => a > b ? a : b, run.createdAt);
  for (const key of ["repository", "head_repository"]) {
    const repository = example[key] as Json;
    Object.assign(repository, { name: run.repo, full_name: repo });
    Object.assign(repository.owner as Json, { login: run.owner });
  }
  return {
    ...example,
    id: run.id,
    node_id: btoa(`WorkflowRun${run.id}`),
    name: "CI",
    run_number: run.id,
    status: runStatus(jobs),
    conclusion: runConclusion(jobs),
    created_at: run.createdAt,
    updated_at: updated,
    run_started_at: run.createdAt,
    url: runUrl,
    html_url: `${urls.web}/${repo}/actions/runs/${run.id}`,
    jobs_url: `${runUrl}/jobs`,
    logs_url: `${runUrl}/logs`,
    check_suite_url: `${urls.api}/repos/${repo}/check-suites/${run.id}`,
    cancel_url: `${runUrl}/cancel`,
    rerun_url: `${runUrl}/rerun`,
    artifacts_url: `${runUrl}/artifacts`,
  };
}

export function installationResource(
  api: OpenApi,
  repo: Pick<Repo, "owner" | "ownerId" | "installationId">,
  appId: number,
  urls: Urls,
): Json {
  const example = api.example("installation");
  Object.assign(example.account as Json, accountOf(repo, urls));
  return {
    ...example,
    id: repo.installationId,
    app_id: appId,
    app_slug: "forrest-test",
    target_id: repo.ownerId,
    repository_selection: "all",
    access_tokens_url:
      `${urls.api}/app/installations/${repo.installationId}/access_tokens`,
    repositories_url: `${urls.api}/installation/repositories`,
    html_url: `${urls.web}/settings/installations/${repo.installationId}`,
    permissions: PERMISSIONS,
    events: ["workflow_job"],
  };
}

/** What Forrest's app asks for: runners (administration) and jobs (actions). */
export const PERMISSIONS = {
  actions: "read",
  administration: "write",
  metadata: "read",
} as const;

/** A runner group as `GET /orgs/{org}/actions/runner-groups` shows it. */
export function runnerGroupResource(
  group: RunnerGroup,
  scope: RunnerScope,
  urls: Urls,
): Json {
  const base = scope.kind === "organization"
    ? `${urls.api}/orgs/${scope.org}`
    : scope.kind === "enterprise"
    ? `${urls.api}/enterprises/${scope.enterprise}`
    : urls.api;
  const url = `${base}/actions/runner-groups/${group.id}`;
  return {
    id: group.id,
    name: group.name,
    visibility: group.visibility,
    default: group.id === 1,
    runners_url: `${url}/runners`,
    allows_public_repositories: true,
    restricted_to_workflows: false,
    selected_workflows: [],
    workflow_restrictions_read_only: false,
    ...(scope.kind === "organization"
      ? {
        inherited: false,
        ...(group.visibility === "selected"
          ? { selected_repositories_url: `${url}/repositories` }
          : {}),
      }
      : {}),
  };
}

/** A repository as listings show it (`minimal-repository`). */
export function repositoryResource(api: OpenApi, repo: Repo, urls: Urls): Json {
  const example = api.example("minimal-repository");
  const full = `${repo.owner}/${repo.name}`;
  Object.assign(example.owner as Json, accountOf(repo, urls));
  return {
    ...example,
    id: repo.id,
    node_id: btoa(`Repository${repo.id}`),
    name: repo.name,
    full_name: full,
    url: `${urls.api}/repos/${full}`,
    html_url: `${urls.web}/${full}`,
    archived: false,
    disabled: false,
  };
}

/** The owner of a repository, as a `simple-user`'s fields that we set. */
function accountOf(repo: Pick<Repo, "owner" | "ownerId">, urls: Urls): Json {
  return {
    login: repo.owner,
    id: repo.ownerId,
    url: `${urls.api}/users/${repo.owner}`,
    html_url: `${urls.web}/${repo.owner}`,
  };
}
