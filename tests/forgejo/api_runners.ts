/**
 * The double's runner endpoints of a repository (`/repos/{owner}/{repo}`)
 * or an organization (`/orgs/{org}`), as `routers/api/v1/shared/runners.go`
 * at v15.0.3 behaves (research note §1.2–§1.4): waiting and running jobs
 * (`null` when none), ephemeral runners registered without labels, listed
 * by page, deleted with 404 once gone. The scope's owner (or a site admin)
 * only: `reqOwner()` / `reqOrgOwnership()`.
 */

import {
  apiError,
  bindBody,
  type Call,
  isReply,
  notFound,
  paginate,
  type Reply,
  requireSignedIn,
} from "./reply.ts";
import { runJobResource, runnerResource } from "./resources.ts";
import type { Runner, RunnerScope } from "./state.ts";
import { sameScope } from "./state.ts";

/**
 * The scope a call names, once the caller may manage its runners: 404 for
 * an unknown repository or organization, 401 anonymous, 403 not an owner.
 */
function scopeOf(call: Call): RunnerScope | Reply {
  const { owner, repo: name, org: orgName } = call.op.pathParams;
  if (orgName !== undefined) {
    const org = call.state.org(orgName);
    if (!org) return notFound(call.base);
    const refused = requireSignedIn(call);
    if (refused) return refused;
    const doer = call.caller!.user;
    if (!doer.admin && !call.state.ownsOrg(org, doer.login)) {
      return apiError(call.base, 403, "Must be an organization owner");
    }
    return { kind: "org", orgId: org.id };
  }
  const repo = call.state.repo(owner!, name!);
  if (!repo) return notFound(call.base);
  const refused = requireSignedIn(call);
  if (refused) return refused;
  const doer = call.caller!.user;
  if (!doer.admin && !call.state.ownsRepo(repo, doer.login)) {
    return apiError(call.base, 403, "user should be the owner of the repo");
  }
  return { kind: "repo", repoId: repo.id };
}

/**
 * Waiting or running attempts, oldest first. `labels` absent: all;
 * present but empty: only jobs without runs-on; otherwise jobs whose
 * whole runs-on is among them (`ItRunsOn`). An empty answer is `null`.
 */
export function searchRunJobs(call: Call): Reply {
  const scope = scopeOf(call);
  if (isReply(scope)) return scope;
  const labels = call.query.has("labels")
    ? (call.query.get("labels") ?? "").split(",").filter((l) => l !== "")
    : undefined;
  const jobs = call.state.jobs().filter((job) =>
    (job.status === "waiting" || job.status === "running") &&
    call.state.inScope(job, scope) &&
    (labels === undefined ||
      job.runsOn.every((label) => labels.includes(label)))
  );
  return {
    status: 200,
    body: jobs.length === 0
      ? null
      : jobs.map((job) => runJobResource(call.state, job, call.major)),
  };
}

/**
 * A scope's runners by page; `visible=true` adds what the scope inherits
 * (a repository: its organization's runners).
 */
export function listRunners(call: Call): Reply {
  const scope = scopeOf(call);
  if (isReply(scope)) return scope;
  const visible = /^(1|t|true)$/i.test(call.query.get("visible") ?? "");
  const runners = call.state.runners().filter((runner) =>
    sameScope(runner.scope, scope) ||
    (visible && inherited(call, runner, scope))
  );
  const { page, headers } = paginate(call, runners);
  return {
    status: 200,
    body: page.map((r) => runnerResource(call.state, r, call.now)),
    headers,
  };
}

function inherited(call: Call, runner: Runner, scope: RunnerScope): boolean {
  if (scope.kind !== "repo" || runner.scope.kind !== "org") return false;
  return call.state.repoById(scope.repoId)?.ownerId === runner.scope.orgId;
}

/** 201 with the runner's own secret; labels come from the runner later. */
export function registerRunner(call: Call): Reply {
  const scope = scopeOf(call);
  if (isReply(scope)) return scope;
  const body = bindBody(call, ["name"]);
  if (isReply(body)) return body;
  const runner = call.state.registerRunner(scope, {
    name: String(body.name),
    description: typeof body.description === "string" ? body.description : "",
    ephemeral: body.ephemeral === true,
  });
  return {
    status: 201,
    body: { id: runner.id, uuid: runner.uuid, token: runner.token },
  };
}

/** The scope's own runner `{runner_id}`, or a 404 (gone, or another's). */
function runnerOf(call: Call): Runner | Reply {
  const scope = scopeOf(call);
  if (isReply(scope)) return scope;
  const raw = call.op.pathParams.runner_id ?? "";
  const runner = /^\d+$/.test(raw) ? call.state.runner(Number(raw)) : undefined;
  if (!runner || !sameScope(runner.scope, scope)) return notFound(call.base);
  return runner;
}

export function getRunner(call: Call): Reply {
  const runner = runnerOf(call);
  if (isReply(runner)) return runner;
  return {
    status: 200,
    body: runnerResource(call.state, runner, call.now),
  };
}

export function deleteRunner(call: Call): Reply {
  const runner = runnerOf(call);
  if (isReply(runner)) return runner;
  call.state.deleteRunner(runner.id);
  return { status: 204 };
}
