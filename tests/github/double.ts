/**
 * A test double of the GitHub REST API on 127.0.0.1: the endpoints Forrest
 * uses, GitHub App authentication, runners, runs and jobs, and `workflow_job`
 * webhooks. Every request and answer is checked against GitHub's OpenAPI
 * description; a mismatch fails the test at `close()`. Test VMs drive jobs
 * through the `/_guest/` endpoints (see guest.ts). Runner scale sets (the
 * Actions service under `/tenant/1/`, see scale_sets.ts) get the jobs that
 * match one of them.
 */

import { createHash, type KeyObject } from "node:crypto";
import { handleGuest } from "./guest.ts";
import { publicKeyOf } from "./jwt.ts";
import {
  type ApiDescription,
  loadOpenApi,
  type MatchedOperation,
  type OpenApi,
} from "./openapi.ts";
import { workflowJobPayload } from "./payloads.ts";
import { jobResource, type Urls } from "./resources.ts";
import { NOT_FOUND, type Reply, RestApi } from "./rest.ts";
import type { ScaleSetView, Session } from "./scale_set_model.ts";
import {
  RUNNER_REGISTRATION_PATH,
  type ScaleSetOptions,
  type ScaleSetRequest,
  type ScaleSetRequestFilter,
  ScaleSetService,
  TENANT_PATH,
} from "./scale_sets.ts";
import {
  GitHubState,
  type Job,
  type JobListener,
  type Runner,
} from "./state.ts";
import {
  deliver,
  type Delivery,
  type SendOptions,
  type WebhookTarget,
} from "./webhooks.ts";

export interface GitHubDoubleOptions {
  readonly appId: number;
  /** PKCS#1 PEM ("BEGIN RSA PRIVATE KEY"), as GitHub issues app keys. */
  readonly privateKeyPem: string;
  readonly webhookSecret: string;
  /**
   * Whose API description requests are checked against: github.com
   * (default), Enterprise Cloud (enterprise endpoints) or Server.
   */
  readonly description?: ApiDescription;
  /** Where the API lives under the host: "/api/v3" for GitHub Enterprise Server. */
  readonly prefix?: string;
  /** How the Actions service treats runner scale sets. */
  readonly scaleSets?: ScaleSetOptions;
}

/** An API request the double answered; `/_guest/` requests are not recorded. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
  /** Whether it had an If-None-Match header (a conditional request). */
  readonly conditional: boolean;
}

/** What some API requests cost of the rate limit (see requestCost). */
export interface RequestCost {
  readonly requests: number;
  /** Those that count against the rate limit: every answer but a 304. */
  readonly counted: number;
  /** Conditional requests answered 304 Not Modified, which GitHub does not count. */
  readonly notModified: number;
}

/**
 * What the next requests get instead of their answer (see failNext and
 * failScaleSetNext). A string body goes out as it is (`""`: an empty
 * body), anything else as JSON; a `content-type` in `headers` overrides
 * JSON's.
 */
export interface Fault {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: unknown;
  readonly delayMs?: number;
}

export interface QueueJobOptions {
  readonly owner: string;
  readonly repo: string;
  readonly labels: readonly string[];
  /** Adds the job to this run instead of a new one. */
  readonly runId?: number;
  /** What the stand-in runs with `sh -c`; nothing by default. */
  readonly script?: string;
  /** Whether to send the `queued` webhook (default true). */
  readonly webhook?: boolean;
}

export class GitHubDouble implements AsyncDisposable {
  /** The API base URL, like https://api.github.com. */
  readonly url: string;
  /**
   * OpenAPI mismatches and broken scale set rules (a queue endpoint called
   * with the admin token, no api-version, runners beyond the announced
   * capacity); `close()` throws while there are any.
   */
  readonly violations: string[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly deliveries: Delivery[] = [];
  /** Every runner-registration and Actions service request, in order. */
  readonly scaleSetRequests: ScaleSetRequest[];

  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #api: OpenApi;
  readonly #options: GitHubDoubleOptions;
  readonly #state: GitHubState;
  readonly #rest: RestApi;
  readonly #urls: Urls;
  readonly #faults: Fault[] = [];
  readonly #scaleSets: ScaleSetService;
  #target: WebhookTarget | undefined;
  /** Webhooks of state changes go out one after another, in order. */
  #webhooks: Promise<void> = Promise.resolve();
  /** While set, state changes send no webhook (they were lost). */
  #muted = false;
  #closed = false;

  /** Starts a double on 127.0.0.1 on a free port. */
  static async start(options: GitHubDoubleOptions): Promise<GitHubDouble> {
    const api = await loadOpenApi(options.description);
    return new GitHubDouble(api, options, publicKeyOf(options.privateKeyPem));
  }

  private constructor(
    api: OpenApi,
    options: GitHubDoubleOptions,
    publicKey: KeyObject,
  ) {
    this.#api = api;
    this.#options = options;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#handle(request),
    );
    this.url = `http://127.0.0.1:${this.#server.addr.port}${
      options.prefix ?? ""
    }`;
    this.#urls = { api: this.url, web: "https://github.com" };
    this.#state = new GitHubState(this.#onJobChange);
    this.#rest = new RestApi(this.#state, api, {
      appId: options.appId,
      publicKey,
      urls: this.#urls,
    });
    this.#scaleSets = new ScaleSetService({
      ...options.scaleSets,
      state: this.#state,
      origin: `http://127.0.0.1:${this.#server.addr.port}`,
      apiUrl: this.url,
      registrationToken: (token) => this.#rest.registrationToken(token),
      issued: this.#rest.issued,
      violate: (problem) => this.violations.push(problem),
    });
    this.#state.router = this.#scaleSets.model;
    this.scaleSetRequests = this.#scaleSets.requests;
  }

  /** Installs the app on a repository; one installation per owner. */
  /**
   * Every secret the double handed out: installation tokens, JIT configs
   * and the runner secrets inside them. None may appear in Forrest's logs.
   */
  get issuedSecrets(): readonly string[] {
    return this.#rest.issued;
  }

  /**
   * A runner registered earlier and left offline (by a Forrest that
   * crashed, or by someone else), as if made by generate-jitconfig.
   */
  addRunner(owner: string, repo: string, name: string, labels: string[]) {
    const found = this.#state.repo(owner, repo);
    if (!found) throw new Error(`No repository ${owner}/${repo}`);
    const runner = this.#state.createRunner(found, {
      name,
      labels,
      runnerGroupId: 1,
      workFolder: "_work",
    });
    if (!runner) throw new Error(`Runner ${name} exists already`);
    return runner;
  }

  /** Reinstalls the App on `owner`: new installation, old tokens void. */
  reinstall(owner: string): number {
    return this.#state.reinstall(owner);
  }

  addRepo(owner: string, repo: string): { installationId: number } {
    return { installationId: this.#state.addRepo(owner, repo).installationId };
  }

  /**
   * An organization, in an enterprise if named (add the enterprise first);
   * its repositories come with addRepo, and the App is installed on it with
   * the first.
   */
  addOrg(login: string, enterprise?: string): void {
    this.#state.addOrg(login, enterprise);
  }

  addEnterprise(slug: string): void {
    this.#state.addEnterprise(slug);
  }

  /**
   * A runner group of an organization or an enterprise; `repos` (names)
   * makes it open to those repositories only. Returns its id.
   */
  addRunnerGroup(
    scope: { org: string } | { enterprise: string },
    name: string,
    repos?: readonly string[],
  ): number {
    const account = "org" in scope
      ? this.#state.org(scope.org)
      : this.#state.enterprise(scope.enterprise);
    if (!account) throw new Error(`No account ${JSON.stringify(scope)}`);
    const ids = (repos ?? []).map((name) => {
      const repo = this.#state.repo(account.login, name);
      if (!repo) throw new Error(`No repository ${account.login}/${name}`);
      return repo.id;
    });
    return this.#state.addRunnerGroup(
      account,
      name,
      repos ? "selected" : "all",
      ids,
    ).id;
  }

  /** A personal access token that works on every endpoint from now on. */
  addToken(token: string): void {
    this.#rest.addPat(token);
  }

  /** The runners of an organization or an enterprise: live state. */
  runnersOf(scope: { org: string } | { enterprise: string }): Runner[] {
    return this.#state.runnersIn(
      "org" in scope
        ? { kind: "organization", org: scope.org }
        : { kind: "enterprise", enterprise: scope.enterprise },
    );
  }

  /** Where webhooks go; undefined drops them (recorded as failed). */
  setWebhookTarget(target: WebhookTarget | undefined): void {
    this.#target = target;
  }

  set webhookTarget(target: WebhookTarget | undefined) {
    this.#target = target;
  }

  /** The next `count` API requests get `fault` instead of their answer. */
  failNext(count: number, fault: Fault): void {
    for (let i = 0; i < count; i++) this.#faults.push(fault);
  }

  /**
   * The next `count` runner-registration and Actions service requests
   * that `which` picks (all by default) get `fault` instead of their
   * answer; a `{status: 200, body: ""}` is "200 with an empty body".
   */
  failScaleSetNext(
    count: number,
    fault: Fault,
    which: ScaleSetRequestFilter = () => true,
  ): void {
    this.#scaleSets.failNext(count, fault, which);
  }

  /** The runner scale sets of every scope, as they are now. */
  scaleSets(): ScaleSetView[] {
    return this.#scaleSets.views();
  }

  /** The message sessions not ended (deleted, idle too long) yet. */
  openSessions(): {
    scaleSetId: number;
    sessionId: string;
    ownerName: string;
  }[] {
    return this.#scaleSets.model.openSessions().map((s: Session) => ({
      scaleSetId: s.scaleSetId,
      sessionId: s.sessionId,
      ownerName: s.ownerName,
    }));
  }

  /** Every admin or message queue token handed out so far is expired now. */
  expireScaleSetTokens(kind: "admin" | "queue"): void {
    this.#scaleSets.expireTokens(kind);
  }

  /**
   * GitHub removes a scale set (as it does after 7 days without a
   * session): its sessions end, pending polls answer 404, its idle runners
   * go, and its jobs that wait are assigned again.
   *
   * @throws when there is no such scale set
   */
  deleteScaleSet(id: number): void {
    if (!this.#scaleSets.model.delete(id)) {
      throw new Error(`No scale set ${id}`);
    }
  }

  /**
   * An assigned job no runner took in time: `JobCompleted` (canceled) to
   * its scale set, then assigned again, up to three times; after that it
   * stays queued and unassigned.
   */
  expireAssignment(jobId: number): void {
    this.#scaleSets.model.expireAssignment(jobId);
  }

  /** The scale set a job is assigned to, if any. */
  jobScaleSet(jobId: number): number | undefined {
    return this.#scaleSets.model.jobScaleSet(jobId);
  }

  /** A new queued job (in a new run unless `runId`), webhook sent. */
  async queueJob(options: QueueJobOptions): Promise<Job> {
    const repo = this.#state.repo(options.owner, options.repo);
    if (!repo) throw new Error(`Unknown repo ${options.owner}/${options.repo}`);
    const job = this.#state.queueJob(repo, {
      labels: options.labels,
      script: options.script ?? "",
      ...(options.runId === undefined ? {} : { runId: options.runId }),
    }, options.webhook ?? true);
    await this.settled();
    return job;
  }

  /** Cancels a queued job, as a user would; webhook `completed` sent. */
  async cancelJob(id: number): Promise<void> {
    this.#state.cancel(id);
    await this.settled();
  }

  /**
   * A queued job taken by a runner not of Forrest's (a GitHub-hosted one,
   * which no runner listing shows): in progress, webhook sent unless
   * `webhook` is false.
   */
  async startJobElsewhere(
    id: number,
    options: { runnerName?: string; webhook?: boolean } = {},
  ): Promise<void> {
    this.#muted = options.webhook === false;
    try {
      this.#state.startElsewhere(id, options.runnerName ?? "GitHub Actions 1");
    } finally {
      this.#muted = false;
    }
    await this.settled();
  }

  /** A job that startJobElsewhere() started ends; webhook as there. */
  async finishJobElsewhere(
    id: number,
    options: { conclusion?: "success" | "failure"; webhook?: boolean } = {},
  ): Promise<void> {
    this.#muted = options.webhook === false;
    try {
      this.#state.finishElsewhere(id, options.conclusion ?? "success");
    } finally {
      this.#muted = false;
    }
    await this.settled();
  }

  /** All jobs, oldest first; live objects that follow later changes. */
  jobs(): Job[] {
    return this.#state.jobs();
  }

  /** A job by id, live (see jobs()). */
  job(id: number): Job | undefined {
    return this.#state.job(id);
  }

  /** The runners registered for a repository: live state, not REST objects. */
  /** When a runner's stand-in first said it runs (Date.now()), by name. */
  onlineAt(name: string): number | undefined {
    return this.#state.onlineAt.get(name);
  }

  runners(owner: string, repo: string): Runner[] {
    const known = this.#state.repo(owner, repo);
    return known ? this.#state.runners(known) : [];
  }

  /** Resolves once the webhooks of the state changes so far were sent. */
  async settled(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.#webhooks;
      await current;
    } while (current !== this.#webhooks);
  }

  /**
   * Delivers one webhook to the target, signed with the webhook secret
   * unless `options.signature` says otherwise, and records it.
   *
   * @throws when there is no target or it cannot be reached
   */
  async sendWebhook(
    event: string,
    payload: unknown,
    options: SendOptions = {},
  ): Promise<{ status: number; body: string }> {
    const delivery = options.delivery ?? crypto.randomUUID();
    const action = typeof payload === "object" && payload !== null &&
        "action" in payload
      ? String(payload.action)
      : undefined;
    const record = { event, delivery, action, payload };
    try {
      if (!this.#target) throw new Error("no webhook target set");
      const answer = await deliver(
        this.#target,
        this.#options.webhookSecret,
        event,
        payload,
        { ...options, delivery },
      );
      this.deliveries.push({ ...record, status: answer.status });
      return answer;
    } catch (error) {
      this.deliveries.push({ ...record, status: 0, error: String(error) });
      throw error;
    }
  }

  /**
   * What the recorded requests from index `from` on (of `requests`), those
   * that `which` picks, cost of the rate limit: GitHub counts every
   * request but a conditional one answered 304 Not Modified.
   */
  requestCost(
    from = 0,
    which: (request: RecordedRequest) => boolean = () => true,
  ): RequestCost {
    const picked = this.requests.slice(from).filter(which);
    const notModified = picked.filter((r) => r.status === 304).length;
    return {
      requests: picked.length,
      counted: picked.length - notModified,
      notModified,
    };
  }

  /** Polls `predicate` every 50 ms; throws naming `what` after `timeoutMs`. */
  async waitFor(
    predicate: () => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() > deadline) {
        throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /**
   * Stops the server after the pending webhooks; blocked message polls
   * answer 202 at once.
   *
   * @throws listing the violations, if any were recorded
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#scaleSets.close();
    await this.settled();
    await this.#server.shutdown();
    if (this.violations.length > 0) {
      throw new Error(
        `The GitHub double saw ${this.violations.length} OpenAPI violation(s):\n` +
          this.violations.join("\n"),
      );
    }
  }

  /**
   * `close()`. When the test body failed too, Deno reports only "an error
   * was suppressed during disposal", so the violations are also logged.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.close();
    } catch (error) {
      console.error(String(error));
      throw error;
    }
  }

  /** Sends the webhook of a state change after those before it; never throws. */
  readonly #onJobChange: JobListener = (job, action) => {
    if (this.#muted) return;
    const repo = this.#state.repo(job.owner, job.repo)!;
    const payload = workflowJobPayload(
      action,
      jobResource(this.#api, job, this.#urls),
      repo,
    );
    // Deliveries of repositories in an enterprise name it, as GitHub's do.
    const slug = this.#state.org(job.owner)?.enterprise;
    const enterprise = slug ? this.#state.enterprise(slug) : undefined;
    if (enterprise) {
      payload.enterprise = {
        id: enterprise.id,
        node_id: btoa(`Enterprise${enterprise.id}`),
        name: enterprise.login,
        slug: enterprise.login,
        html_url: `${this.#urls.web}/enterprises/${enterprise.login}`,
        avatar_url: `${this.#urls.web}/avatars/${enterprise.id}`,
        created_at: "2024-01-01T00:00:00Z",
        updated_at: "2024-01-01T00:00:00Z",
      };
    }
    const key = `workflow-job-${action.replace("_", "-")}`;
    this.#violate(`webhook ${key}`, this.#api.checkWebhook(key, payload));
    this.#webhooks = this.#webhooks.then(() =>
      this.sendWebhook("workflow_job", payload).then(() => {}, () => {})
    );
  };

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    try {
      const body = await request.text();
      // The Actions service lives outside the API, as on GitHub.
      if (url.pathname.startsWith(TENANT_PATH)) {
        return await this.#scaleSets.handle(
          request,
          url.pathname,
          url.searchParams,
          body,
        );
      }
      // Guests (the stand-in runner) use /_guest/ without the prefix.
      const prefix = this.#options.prefix ?? "";
      if (!url.pathname.startsWith("/_guest/")) {
        if (!url.pathname.startsWith(`${prefix}/`)) {
          return toResponse(NOT_FOUND);
        }
        url.pathname = url.pathname.slice(prefix.length);
      }
      // Not in GitHub's OpenAPI description, but on the REST API's base.
      if (url.pathname === RUNNER_REGISTRATION_PATH) {
        return await this.#scaleSets.handle(
          request,
          url.pathname,
          url.searchParams,
          body,
        );
      }
      if (url.pathname.startsWith("/_guest/")) {
        const response = handleGuest(this.#state, url, request.method, body);
        await this.settled();
        return response;
      }
      const op = this.#api.match(request.method, url.pathname);
      if (op) {
        this.#violate(
          describe(op, "request"),
          this.#api.checkRequest(op, url.searchParams, body),
        );
      }
      const ifNoneMatch = request.headers.get("if-none-match");
      const reply = conditional(
        request.method,
        await this.#reply(op, request.headers, url, body),
        ifNoneMatch,
      );
      this.requests.push({
        method: request.method,
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        status: reply.status,
        conditional: ifNoneMatch !== null,
      });
      return toResponse(reply);
    } catch (error) {
      this.violations.push(`the double failed on ${url.pathname}: ${error}`);
      return new Response(String(error), { status: 500 });
    }
  }

  async #reply(
    op: MatchedOperation | undefined,
    headers: Headers,
    url: URL,
    body: string,
  ): Promise<Reply> {
    const fault = this.#faults.shift();
    if (fault) {
      const delayMs = fault.delayMs ?? 0;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      return fault;
    }
    if (!op) return NOT_FOUND;
    const reply = this.#rest.handle(
      op,
      headers,
      url.pathname,
      url.searchParams,
      body,
    );
    this.#violate(
      describe(op, `response ${reply.status}`),
      this.#api.checkResponse(op, reply.status, reply.body),
    );
    return reply;
  }

  #violate(what: string, problems: readonly string[]): void {
    for (const problem of problems) this.violations.push(`${what}: ${problem}`);
  }
}

function describe(op: MatchedOperation, what: string): string {
  return `${op.method} ${op.template} (${op.operationId}) ${what}`;
}

/**
 * GitHub's conditional requests: a GET answered 200 carries a weak ETag
 * of its body, so the ETag changes exactly when what is listed does. The
 * same GET with that ETag in If-None-Match is answered 304 Not Modified,
 * without a body. GitHub documents this for its whole REST API, not per
 * operation, so the OpenAPI description lists no 304 here: the 200 the
 * 304 stands for was checked against it already.
 */
function conditional(
  method: string,
  reply: Reply,
  ifNoneMatch: string | null,
): Reply {
  if (method !== "GET" || reply.status !== 200 || reply.body === undefined) {
    return reply;
  }
  const hash = createHash("sha256").update(bodyText(reply.body)).digest("hex");
  const etag = `W/"${hash}"`;
  const headers = { ...reply.headers, etag };
  // Weak comparison (RFC 9110 §13.1.2): W/ prefixes do not matter.
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "");
  const matched = ifNoneMatch !== null &&
    ifNoneMatch.split(",").some((tag) =>
      tag.trim() === "*" || opaque(tag) === opaque(etag)
    );
  return matched ? { status: 304, headers: { etag } } : { ...reply, headers };
}

function bodyText(body: unknown): string {
  return typeof body === "string" ? body : JSON.stringify(body);
}

function toResponse(reply: Reply): Response {
  const headers = new Headers(reply.headers);
  if (reply.body === undefined) {
    return new Response(null, { status: reply.status, headers });
  }
  if (!headers.has("content-type")) {
    headers.set("content-type", "application/json; charset=utf-8");
  }
  return new Response(bodyText(reply.body), {
    status: reply.status,
    headers,
  });
}
