/**
 * The REST endpoints the double implements, with GitHub's authentication:
 * an app JWT for the app endpoints, an installation token or a personal
 * access token for the rest. Runners live in a repository, an organization
 * (in one of its runner groups) or an enterprise; an installation token
 * cannot reach enterprise endpoints (GitHub Apps cannot manage enterprise
 * runners), a personal access token reaches everything. Registration
 * tokens are what runner scale set clients trade for an Actions service
 * token (scale_sets.ts).
 */

import type { KeyObject } from "node:crypto";
import { jwtProblem } from "./jwt.ts";
import type { MatchedOperation, OpenApi } from "./openapi.ts";
import {
  installationResource,
  jobResource,
  PERMISSIONS,
  repositoryResource,
  runnerGroupResource,
  runnerResource,
  runResource,
  type Urls,
} from "./resources.ts";
import {
  type Account,
  type GitHubState,
  type Job,
  randomToken,
  type Repo,
  type Run,
  type RunnerScope,
  type RunnerState,
  runStatus,
  timestamp,
} from "./state.ts";

/** An answer before it becomes a Response; `body` undefined means none. */
export interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface RestOptions {
  readonly appId: number;
  readonly publicKey: KeyObject;
  readonly urls: Urls;
}

interface Call {
  readonly op: MatchedOperation;
  /** The request's path, for Link headers. */
  readonly path: string;
  readonly repo: Repo;
  readonly query: URLSearchParams;
  readonly body: unknown;
}

/** A call on an organization's or an enterprise's runners. */
interface AccountCall {
  readonly op: MatchedOperation;
  readonly path: string;
  readonly scope: RunnerScope;
  readonly account: Account;
  readonly query: URLSearchParams;
  readonly body: unknown;
}

/** Operations authenticated with the app's JWT rather than a token. */
const APP_OPERATIONS = new Set([
  "apps/get-repo-installation",
  "apps/get-org-installation",
  "apps/create-installation-access-token",
]);

const ORG_OPERATIONS = new Set([
  "actions/generate-runner-jitconfig-for-org",
  "actions/create-registration-token-for-org",
  "actions/list-self-hosted-runners-for-org",
  "actions/get-self-hosted-runner-for-org",
  "actions/delete-self-hosted-runner-from-org",
  "actions/list-self-hosted-runner-groups-for-org",
  "actions/list-repo-access-to-self-hosted-runner-group-in-org",
  "repos/list-for-org",
]);

const ENTERPRISE_OPERATIONS = new Set([
  "actions/generate-runner-jitconfig-for-enterprise",
  "enterprise-admin/create-registration-token-for-enterprise",
  "enterprise-admin/list-self-hosted-runners-for-enterprise",
  "enterprise-admin/get-self-hosted-runner-for-enterprise",
  "enterprise-admin/delete-self-hosted-runner-from-enterprise",
  "enterprise-admin/list-self-hosted-runner-groups-for-enterprise",
]);

/** Who a token is: an App installation, or a personal access token. */
type Caller = { readonly installationId: number } | "pat";

const REPO_OPERATIONS = new Set([
  "actions/generate-runner-jitconfig-for-repo",
  "actions/create-registration-token-for-repo",
  "actions/list-self-hosted-runners-for-repo",
  "actions/get-self-hosted-runner-for-repo",
  "actions/delete-self-hosted-runner-from-repo",
  "actions/list-workflow-runs-for-repo",
  "actions/get-workflow-run",
  "actions/list-jobs-for-workflow-run",
  "actions/get-job-for-workflow-run",
]);

const DOCS = "https://docs.github.com/rest";
const TOKEN_LIFETIME_MS = 60 * 60 * 1000;

export function errorReply(status: number, message: string): Reply {
  return { status, body: { message, documentation_url: DOCS } };
}

export const NOT_FOUND = errorReply(404, "Not Found");

/**
 * A runner's encoded JIT config as the double hands them out: base64 JSON
 * naming the runner, with the secret its stand-in proves itself with.
 */
export function encodeJitConfig(
  runner: RunnerState,
  serverUrl: string,
): string {
  return btoa(JSON.stringify({
    runner_id: runner.id,
    runner_name: runner.name,
    secret: runner.secret,
    work_folder: runner.workFolder,
    server_url: serverUrl,
  }));
}

/** A registration token's scope and when it expires (Date.now() time). */
export interface RegistrationToken {
  readonly scope: RunnerScope;
  readonly expiresAt: number;
}
const BAD_CREDENTIALS = errorReply(401, "Bad credentials");
const NOT_FOR_APPS = errorReply(403, "Resource not accessible by integration");

export class RestApi {
  /** Tokens and JIT configs handed out, for leak checks. */
  readonly issued: string[] = [];
  readonly #state: GitHubState;
  readonly #api: OpenApi;
  readonly #options: RestOptions;
  readonly #tokens = new Map<
    string,
    { installationId: number; expiresAt: number }
  >();
  /** Personal access tokens that work everywhere. */
  readonly #pats = new Set<string>();
  readonly #registrationTokens = new Map<string, RegistrationToken>();

  constructor(state: GitHubState, api: OpenApi, options: RestOptions) {
    this.#state = state;
    this.#api = api;
    this.#options = options;
  }

  /** A personal access token that the double accepts from now on. */
  addPat(token: string): void {
    this.#pats.add(token);
  }

  /** A registration token handed out, if it has not expired. */
  registrationToken(token: string): RegistrationToken | undefined {
    const found = this.#registrationTokens.get(token);
    return found && found.expiresAt > Date.now() ? found : undefined;
  }

  handle(
    op: MatchedOperation,
    headers: Headers,
    path: string,
    query: URLSearchParams,
    rawBody: string,
  ): Reply {
    const authorization = headers.get("authorization");
    if (APP_OPERATIONS.has(op.operationId)) {
      const problem = jwtProblem(
        authorization,
        this.#options.appId,
        this.#options.publicKey,
      );
      if (problem) return errorReply(401, problem);
      return op.operationId === "apps/create-installation-access-token"
        ? this.#accessToken(op)
        : this.#installation(op);
    }
    const caller = this.#callerOf(authorization);
    if (caller === undefined) return BAD_CREDENTIALS;
    let body: unknown;
    try {
      body = rawBody === "" ? undefined : JSON.parse(rawBody);
    } catch {
      return errorReply(400, "Problems parsing JSON");
    }
    if (ORG_OPERATIONS.has(op.operationId)) {
      const org = this.#state.org(op.pathParams.org!);
      if (!org) return NOT_FOUND;
      if (
        caller !== "pat" &&
        caller.installationId !== this.#ownerInstallation(org.login)
      ) {
        return BAD_CREDENTIALS;
      }
      const scope = { kind: "organization", org: org.login } as const;
      return this.#accountOperation({
        op,
        path,
        scope,
        account: org,
        query,
        body,
      });
    }
    if (ENTERPRISE_OPERATIONS.has(op.operationId)) {
      if (caller !== "pat") return NOT_FOR_APPS;
      const enterprise = this.#state.enterprise(op.pathParams.enterprise!);
      if (!enterprise) return NOT_FOUND;
      const scope = {
        kind: "enterprise",
        enterprise: enterprise.login,
      } as const;
      return this.#accountOperation({
        op,
        path,
        scope,
        account: enterprise,
        query,
        body,
      });
    }
    if (!REPO_OPERATIONS.has(op.operationId)) return NOT_FOUND;
    const repo = this.#state.repo(op.pathParams.owner!, op.pathParams.repo!);
    if (!repo) return NOT_FOUND;
    if (caller !== "pat" && repo.installationId !== caller.installationId) {
      return BAD_CREDENTIALS;
    }
    return this.#repoOperation({ op, path, repo, query, body });
  }

  #callerOf(authorization: string | null): Caller | undefined {
    const match = /^(?:token|bearer)\s+(\S+)$/i.exec(authorization ?? "");
    if (match && this.#pats.has(match[1]!)) return "pat";
    const token = match ? this.#tokens.get(match[1]!) : undefined;
    return token && token.expiresAt > Date.now()
      ? { installationId: token.installationId }
      : undefined;
  }

  /** The installation on an account's repositories, if the App has one. */
  #ownerInstallation(login: string): number | undefined {
    return this.#state.installationOf(login);
  }

  #installation(op: MatchedOperation): Reply {
    // The App is installed on an organization itself, repositories or not.
    const org = op.operationId === "apps/get-org-installation"
      ? this.#state.org(op.pathParams.org!)
      : undefined;
    const repo = org
      ? this.#state.installOn(org.login)
      : this.#state.repo(op.pathParams.owner!, op.pathParams.repo!);
    if (!repo) return NOT_FOUND;
    const { appId, urls } = this.#options;
    return {
      status: 200,
      body: installationResource(this.#api, repo, appId, urls),
    };
  }

  #accessToken(op: MatchedOperation): Reply {
    const installationId = Number(op.pathParams.installation_id);
    if (!this.#state.hasInstallation(installationId)) return NOT_FOUND;
    const token = `ghs_${randomToken(36)}`;
    const expiresAt = Date.now() + TOKEN_LIFETIME_MS;
    this.#tokens.set(token, { installationId, expiresAt });
    this.issued.push(token);
    return {
      status: 201,
      body: {
        token,
        expires_at: timestamp(new Date(expiresAt)),
        permissions: PERMISSIONS,
        repository_selection: "all",
      },
    };
  }

  #repoOperation(call: Call): Reply {
    switch (call.op.operationId) {
      case "actions/generate-runner-jitconfig-for-repo":
        return this.#generateJitConfig({ scope: call.repo, body: call.body });
      case "actions/create-registration-token-for-repo":
        return this.#registration({
          kind: "repository",
          owner: call.repo.owner,
          repo: call.repo.name,
        });
      case "actions/list-self-hosted-runners-for-repo": {
        const name = call.query.get("name");
        const runners = this.#state.runners(call.repo)
          .filter((r) => name === null || r.name === name);
        return this.#page(call, runners, "runners", (r) => this.#runner(r));
      }
      case "actions/get-self-hosted-runner-for-repo":
      case "actions/delete-self-hosted-runner-from-repo":
        return this.#runnerById(
          call,
          this.#state.runners(call.repo),
          Number(call.op.pathParams.runner_id),
        );
      case "actions/list-workflow-runs-for-repo":
        return this.#page(
          call,
          this.#runs(call),
          "workflow_runs",
          (run) => this.#run(run),
        );
      case "actions/get-workflow-run": {
        const run = this.#state.run(
          call.repo,
          Number(call.op.pathParams.run_id),
        );
        return run ? { status: 200, body: this.#run(run) } : NOT_FOUND;
      }
      case "actions/list-jobs-for-workflow-run": {
        const run = this.#state.run(
          call.repo,
          Number(call.op.pathParams.run_id),
        );
        if (!run) return NOT_FOUND;
        const jobs = this.#state.jobsOf(run);
        return this.#page(call, jobs, "jobs", (job) => this.#job(job));
      }
      case "actions/get-job-for-workflow-run": {
        const job = this.#state.job(Number(call.op.pathParams.job_id));
        const mine = job && job.owner === call.repo.owner &&
          job.repo === call.repo.name;
        return mine ? { status: 200, body: this.#job(job) } : NOT_FOUND;
      }
    }
    return NOT_FOUND;
  }

  #accountOperation(call: AccountCall): Reply {
    const { op, scope, account } = call;
    const runnerId = Number(op.pathParams.runner_id);
    switch (op.operationId) {
      case "actions/generate-runner-jitconfig-for-org":
      case "actions/generate-runner-jitconfig-for-enterprise":
        return this.#generateJitConfig({ scope, body: call.body });
      case "actions/create-registration-token-for-org":
      case "enterprise-admin/create-registration-token-for-enterprise":
        return this.#registration(scope);
      case "actions/list-self-hosted-runners-for-org":
      case "enterprise-admin/list-self-hosted-runners-for-enterprise":
        return this.#page(
          call,
          this.#state.runnersIn(scope),
          "runners",
          (r) => this.#runner(r),
        );
      case "actions/get-self-hosted-runner-for-org":
      case "enterprise-admin/get-self-hosted-runner-for-enterprise":
      case "actions/delete-self-hosted-runner-from-org":
      case "enterprise-admin/delete-self-hosted-runner-from-enterprise":
        return this.#runnerById(call, this.#state.runnersIn(scope), runnerId);
      case "actions/list-self-hosted-runner-groups-for-org":
      case "enterprise-admin/list-self-hosted-runner-groups-for-enterprise":
        return this.#page(
          call,
          account.groups,
          "runner_groups",
          (group) => runnerGroupResource(group, scope, this.#options.urls),
        );
      case "actions/list-repo-access-to-self-hosted-runner-group-in-org": {
        const group = account.groups.find((g) =>
          g.id === Number(op.pathParams.runner_group_id)
        );
        if (!group) return NOT_FOUND;
        const repos = this.#state.reposOf(account.login)
          .filter((r) => group.repoIds.includes(r.id));
        return this.#page(
          call,
          repos,
          "repositories",
          (repo) => repositoryResource(this.#api, repo, this.#options.urls),
        );
      }
      case "repos/list-for-org": {
        // An array, not an object: GitHub pages it by Link header only.
        const page = this.#page(
          call,
          this.#state.reposOf(account.login),
          "items",
          (repo) => repositoryResource(this.#api, repo, this.#options.urls),
        );
        return { ...page, body: (page.body as { items: unknown[] }).items };
      }
    }
    return NOT_FOUND;
  }

  #generateJitConfig(
    { scope, body }: { scope: RunnerScope | Repo; body: unknown },
  ): Reply {
    const fields = body as Record<string, unknown> | undefined;
    const labels = fields?.labels;
    if (
      typeof fields?.name !== "string" ||
      typeof fields.runner_group_id !== "number" ||
      !Array.isArray(labels) || labels.length < 1 || labels.length > 100 ||
      !labels.every((l) => typeof l === "string")
    ) {
      return errorReply(422, "Invalid request: name, runner_group_id, labels");
    }
    const where: RunnerScope = "kind" in scope
      ? scope
      : { kind: "repository", owner: scope.owner, repo: scope.name };
    if (
      !this.#state.groupsOf(where).some((g) => g.id === fields.runner_group_id)
    ) {
      return errorReply(404, "Not Found - runner group");
    }
    const workFolder = typeof fields.work_folder === "string"
      ? fields.work_folder
      : "_work";
    const runner = this.#state.createRunner(where, {
      name: fields.name,
      labels,
      runnerGroupId: fields.runner_group_id,
      workFolder,
    });
    if (!runner) {
      return errorReply(409, "Already exists - A runner with the same name");
    }
    const encoded = encodeJitConfig(runner, this.#options.urls.api);
    this.issued.push(encoded, runner.secret);
    return {
      status: 201,
      body: {
        runner: this.#runner(runner),
        encoded_jit_config: encoded,
      },
    };
  }

  /** A registration token for `scope`, valid for an hour, as GitHub's. */
  #registration(scope: RunnerScope): Reply {
    const token = randomToken(29).toUpperCase();
    const expiresAt = Date.now() + TOKEN_LIFETIME_MS;
    this.#registrationTokens.set(token, { scope, expiresAt });
    this.issued.push(token);
    return {
      status: 201,
      body: { token, expires_at: timestamp(new Date(expiresAt)) },
    };
  }

  #runnerById(
    call: { op: MatchedOperation },
    runners: readonly RunnerState[],
    id: number,
  ): Reply {
    const runner = runners.find((r) => r.id === id);
    if (!runner) return NOT_FOUND;
    if (call.op.method === "GET") {
      return { status: 200, body: this.#runner(runner) };
    }
    if (runner.busy) {
      return errorReply(
        422,
        `Bad request - Runner "${runner.name}" is still running a job"`,
      );
    }
    this.#state.deleteRunner(runner.id);
    return { status: 204 };
  }

  /** Runs of the repository, newest first, filtered as GitHub filters. */
  #runs({ repo, query }: Call): Run[] {
    const status = query.get("status");
    const created = query.get("created");
    return this.#state.runs(repo).filter((run) => {
      const jobs = this.#state.jobsOf(run);
      return (status === null || runStatus(jobs) === status) &&
        (created === null || createdMatches(run.createdAt, created));
    }).reverse();
  }

  #runner(runner: Parameters<typeof runnerResource>[0]) {
    return runnerResource(runner, (name) => this.#state.labelId(name));
  }

  #run(run: Run) {
    const jobs = this.#state.jobsOf(run);
    return runResource(this.#api, run, jobs, this.#options.urls);
  }

  #job(job: Job) {
    return jobResource(this.#api, job, this.#options.urls);
  }

  /** One page of `items` as `{total_count, [key]}`, with GitHub's Link header. */
  #page<T>(
    call: { path: string; query: URLSearchParams },
    items: readonly T[],
    key: string,
    show: (item: T) => unknown,
  ): Reply {
    const perPage = perPageOf(call.query.get("per_page"));
    const page = Math.max(1, Number(call.query.get("page") ?? 1) || 1);
    const last = Math.max(1, Math.ceil(items.length / perPage));
    const slice = items.slice((page - 1) * perPage, page * perPage);
    const link = (n: number, rel: string) => {
      const params = new URLSearchParams(call.query);
      params.set("per_page", String(perPage));
      params.set("page", String(n));
      return `<${this.#options.urls.api}${call.path}?${params}>; rel="${rel}"`;
    };
    const links = [
      ...(page < last ? [link(page + 1, "next"), link(last, "last")] : []),
      ...(page > 1 ? [link(1, "first"), link(page - 1, "prev")] : []),
    ];
    return {
      status: 200,
      body: { total_count: items.length, [key]: slice.map(show) },
      ...(links.length ? { headers: { link: links.join(", ") } } : {}),
    };
  }
}

/** GitHub's `per_page`: 30 unless given, at most 100. */
function perPageOf(raw: string | null): number {
  const value = Math.floor(Number(raw ?? 30));
  return Number.isFinite(value) ? Math.min(100, Math.max(1, value)) : 30;
}

/**
 * GitHub's `created` search qualifier: `>=T`, `>T`, `<=T`, `<T`, `A..B`
 * (`*` for an open end), or a date or time prefix.
 */
export function createdMatches(createdAt: string, filter: string): boolean {
  const at = Date.parse(createdAt);
  const range = /^(.+)\.\.(.+)$/.exec(filter);
  if (range) {
    const [from, to] = [range[1]!, range[2]!];
    return (from === "*" || at >= Date.parse(from)) &&
      (to === "*" || at <= Date.parse(to));
  }
  const compare = /^(>=|<=|>|<)(.+)$/.exec(filter);
  if (!compare) return createdAt.startsWith(filter);
  const bound = Date.parse(compare[2]!);
  switch (compare[1]) {
    case ">=":
      return at >= bound;
    case ">":
      return at > bound;
    case "<=":
      return at <= bound;
    default:
      return at < bound;
  }
}
