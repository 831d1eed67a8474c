/**
 * GitHub's runner scale set protocol, as actions/scaleset speaks it, for
 * the GitHub double: `POST /actions/runner-registration` (a registration
 * token for an Actions service URL and admin token), and the Actions
 * service under `/tenant/1/`: runner groups, scale sets, message sessions,
 * the long-polled message queue, `acquirejobs`, JIT configs and agents.
 * There is no public description of this service; the shapes follow the
 * clients (actions/scaleset, ARC, GARM). What the double knows lives in
 * scale_set_model.ts; this file checks tokens, the invariants a client
 * must keep, and plays faults.
 */

import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import type { Fault } from "./double.ts";
import { encodeJitConfig, type RegistrationToken } from "./rest.ts";
import {
  type RunnerSetting,
  type ScaleSet,
  type ScaleSetFields,
  type ScaleSetLabel,
  type ScaleSetMode,
  ScaleSetModel,
  type ScaleSetView,
  type Session,
} from "./scale_set_model.ts";
import {
  type GitHubState,
  type RunnerScope,
  type RunnerState,
  scopeKey,
} from "./state.ts";

export interface ScaleSetOptions {
  /** How jobs reach scale sets: `JobAssigned` (github.com, default) or `JobAvailable` and acquire (ghes). */
  readonly mode?: ScaleSetMode;
  /** How long a message poll blocks before it answers 202 (default 50 s). */
  readonly pollWindowMs?: number;
  /** How long admin tokens from runner-registration live (default 1 h). */
  readonly adminTokenTtlMs?: number;
  /** How long message queue tokens live (default 1 h). */
  readonly queueTokenTtlMs?: number;
  /** A session nobody polls for this long ends (default 120 s). */
  readonly sessionIdleTtlMs?: number;
  /** Whether JSON answers start with a UTF-8 byte order mark, as some do. */
  readonly bom?: boolean;
}

/** Which token a request carried. */
export type ScaleSetAuth = "admin" | "queue" | "remote-auth" | "none" | "other";

/** A runner-registration or Actions service request the double answered. */
export interface ScaleSetRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
  readonly auth: ScaleSetAuth;
  /** Its `X-ScaleSetMaxCapacity`, if it had one. */
  readonly maxCapacity?: number;
}

/** Which requests a fault is for (see failScaleSetNext). */
export type ScaleSetRequestFilter = (
  request: { method: string; path: string },
) => boolean;

export interface ScaleSetServiceOptions extends ScaleSetOptions {
  readonly state: GitHubState;
  /** Where the double listens, without the API prefix: `http://127.0.0.1:PORT`. */
  readonly origin: string;
  /** The REST API URL, for the JIT configs' `server_url`. */
  readonly apiUrl: string;
  /** A registration token's scope, if the token is known and unexpired. */
  readonly registrationToken: (token: string) => RegistrationToken | undefined;
  /** Where secrets handed out go, for leak checks. */
  readonly issued: string[];
  readonly violate: (problem: string) => void;
}

/** The Actions service's base path on the double. */
export const TENANT_PATH = "/tenant/1/";
/** Where runner scale set clients trade a registration token. */
export const RUNNER_REGISTRATION_PATH = "/actions/runner-registration";
const API_VERSION = "6.0-preview";
const HOUR_MS = 60 * 60 * 1000;
const RUNTIME = "GitHub.Actions.Runtime.WebApi";
const TASK = "GitHub.DistributedTask.WebApi";
const UNAUTHORIZED = "GitHub.Services.WebApi.VssUnauthorizedException";

/** An answer before it becomes a Response; `body` undefined means none. */
interface Answer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A matched endpoint and the token it needs. */
interface Route {
  readonly auth: "admin" | "queue" | "remote-auth";
  readonly name: string;
  readonly params: readonly string[];
}

interface Call {
  readonly route: Route;
  readonly query: URLSearchParams;
  readonly body: string;
  readonly token: string | undefined;
  readonly maxCapacity: number | undefined;
}

interface AdminToken {
  readonly scope: RunnerScope;
  expiresAt: number;
}

interface QueueToken {
  readonly sessionId: string;
  readonly scaleSetId: number;
  expiresAt: number;
}

function exception(status: number, typeName: string, message: string): Answer {
  return { status, body: { typeName, message } };
}

const NO_SUCH_ENDPOINT = exception(
  404,
  `${TASK}.ResourceNotFoundException`,
  "No such endpoint",
);

export class ScaleSetService {
  /** Every request answered, in order. */
  readonly requests: ScaleSetRequest[] = [];
  readonly model: ScaleSetModel;
  readonly #options: ScaleSetServiceOptions;
  readonly #adminTokens = new Map<string, AdminToken>();
  readonly #queueTokens = new Map<string, QueueToken>();
  readonly #faults: { fault: Fault; which: ScaleSetRequestFilter }[] = [];
  /** Long polls waiting for a change; each re-checks when called. */
  readonly #waiters = new Set<() => void>();
  readonly #closing = new AbortController();
  readonly #jwtKey = crypto.getRandomValues(new Uint8Array(32));

  constructor(options: ScaleSetServiceOptions) {
    this.#options = options;
    this.model = new ScaleSetModel(options.state, {
      mode: options.mode ?? "github.com",
      sessionIdleTtlMs: options.sessionIdleTtlMs ?? 120_000,
      acquireJobUrl: (id) =>
        `${this.#tenant}_apis/runtime/runnerscalesets/${id}/acquirejobs?api-version=${API_VERSION}`,
      onChange: () => {
        for (const wake of [...this.#waiters]) wake();
      },
    });
  }

  get #tenant(): string {
    return `${this.#options.origin}${TENANT_PATH}`;
  }

  /** The next `count` requests that `which` picks get `fault` instead. */
  failNext(count: number, fault: Fault, which: ScaleSetRequestFilter): void {
    for (let i = 0; i < count; i++) this.#faults.push({ fault, which });
  }

  /** Every token of the kind handed out so far is expired from now on. */
  expireTokens(kind: "admin" | "queue"): void {
    const tokens = kind === "admin" ? this.#adminTokens : this.#queueTokens;
    for (const token of tokens.values()) token.expiresAt = 0;
  }

  views(): ScaleSetView[] {
    return this.model.views();
  }

  /** Ends the blocked long polls (they answer 202) and fault delays. */
  close(): void {
    this.#closing.abort();
    for (const wake of [...this.#waiters]) wake();
  }

  /** Answers a request to `/actions/runner-registration` or under `/tenant/1/`. */
  async handle(
    request: Request,
    path: string,
    query: URLSearchParams,
    body: string,
  ): Promise<Response> {
    const authorization = request.headers.get("authorization") ?? "";
    const token = /^(?:bearer|remoteauth)\s+(\S+)$/i.exec(authorization)?.[1];
    const auth = this.#authKind(authorization, token);
    const capacityHeader = request.headers.get("x-scalesetmaxcapacity");
    const maxCapacity = capacityHeader !== null &&
        /^\s*\d+\s*$/.test(capacityHeader)
      ? Number(capacityHeader)
      : undefined;
    const route = routeOf(request.method, path);
    if (route) this.#checkInvariants(request, route, query, path, auth);
    let answer: Answer;
    const faultIndex = this.#faults.findIndex((f) =>
      f.which({ method: request.method, path })
    );
    if (faultIndex >= 0) {
      const { fault } = this.#faults.splice(faultIndex, 1)[0]!;
      await this.#sleep(fault.delayMs ?? 0);
      answer = fault;
    } else if (!route) {
      answer = NO_SUCH_ENDPOINT;
    } else {
      answer = await this.#answer({
        route,
        query,
        body,
        token,
        maxCapacity,
      });
    }
    this.requests.push({
      method: request.method,
      path,
      query: Object.fromEntries(query),
      status: answer.status,
      auth,
      ...(maxCapacity === undefined ? {} : { maxCapacity }),
    });
    return this.#toResponse(answer, faultIndex >= 0);
  }

  #authKind(authorization: string, token: string | undefined): ScaleSetAuth {
    if (authorization === "") return "none";
    if (/^remoteauth\s/i.test(authorization)) return "remote-auth";
    if (token === undefined) return "other";
    if (this.#adminTokens.has(token)) return "admin";
    if (this.#queueTokens.has(token)) return "queue";
    return "other";
  }

  /** What a client must never do, recorded whatever the answer. */
  #checkInvariants(
    request: Request,
    route: Route,
    query: URLSearchParams,
    path: string,
    auth: ScaleSetAuth,
  ): void {
    const what = `${request.method} ${path}`;
    if (route.auth === "queue" && auth === "admin") {
      this.#options.violate(`${what}: a queue endpoint got the admin token`);
    }
    if (route.auth === "remote-auth" || route.name === "delete message") {
      return; // no api-version: actions/scaleset sends none with these
    }
    const versioned = query.get("api-version") === API_VERSION ||
      (route.name === "get message" &&
        (request.headers.get("accept") ?? "").includes(
          `api-version=${API_VERSION}`,
        ));
    if (!versioned) {
      this.#options.violate(`${what}: no api-version=${API_VERSION}`);
    }
  }

  async #answer(call: Call): Promise<Answer> {
    const { route } = call;
    if (route.auth === "remote-auth") return this.#register(call);
    if (route.auth === "queue") {
      const queueToken = call.token === undefined
        ? undefined
        : this.#queueTokens.get(call.token);
      if (!queueToken || queueToken.expiresAt <= Date.now()) {
        return exception(401, UNAUTHORIZED, "The queue token is not valid");
      }
      return await this.#queueCall(call, queueToken);
    }
    const admin = call.token === undefined
      ? undefined
      : this.#adminTokens.get(call.token);
    if (!admin || admin.expiresAt <= Date.now()) {
      return exception(401, UNAUTHORIZED, "The admin token is not valid");
    }
    let body: unknown;
    try {
      body = call.body.trim() === "" ? undefined : JSON.parse(call.body);
    } catch {
      return exception(400, "System.ArgumentException", "Body is not JSON");
    }
    return this.#adminCall(route, admin.scope, call.query, body);
  }

  /** `POST /actions/runner-registration`: a registration token's trade. */
  #register(call: Call): Answer {
    const registration = call.token === undefined
      ? undefined
      : this.#options.registrationToken(call.token);
    if (!registration) {
      return { status: 401, body: { message: "Bad credentials" } };
    }
    let fields: Record<string, unknown>;
    try {
      fields = JSON.parse(call.body);
    } catch {
      return { status: 400, body: { message: "Problems parsing JSON" } };
    }
    const scope = typeof fields?.url === "string"
      ? scopeOfConfigUrl(fields.url)
      : undefined;
    if (!scope || fields.runner_event !== "register") {
      return { status: 400, body: { message: "Invalid url or runner_event" } };
    }
    if (scopeKey(scope) !== scopeKey(registration.scope)) {
      return {
        status: 403,
        body: { message: "The registration token is for another scope" },
      };
    }
    const ttl = this.#options.adminTokenTtlMs ?? HOUR_MS;
    const expiresAt = Date.now() + ttl;
    const token = this.#jwt(scopeKey(scope), expiresAt);
    this.#adminTokens.set(token, { scope: registration.scope, expiresAt });
    this.#options.issued.push(token);
    return {
      status: 201,
      body: { url: this.#tenant, token, token_schema: "OAuthAccessToken" },
    };
  }

  #adminCall(
    route: Route,
    scope: RunnerScope,
    query: URLSearchParams,
    body: unknown,
  ): Answer {
    const [first, second] = route.params;
    const set = first === undefined
      ? undefined
      : this.#scaleSetIn(scope, first);
    const notFound = exception(
      404,
      `${RUNTIME}.RunnerScaleSetNotFoundException`,
      `No runner scale set with id ${first}`,
    );
    switch (route.name) {
      case "runner groups":
        return this.#runnerGroups(scope, query.get("groupName"));
      case "list scale sets": {
        const group = query.get("runnerGroupId");
        const name = query.get("name")?.toLowerCase();
        const found = this.model.scaleSetsOf(scope).filter((s) =>
          (group === null || s.runnerGroupId === Number(group)) &&
          (name === undefined || s.name.toLowerCase() === name)
        );
        return list(found.map((s) => this.#scaleSetJson(s)));
      }
      case "create scale set":
        return this.#createScaleSet(scope, body);
      case "get scale set":
        return set ? { status: 200, body: this.#scaleSetJson(set) } : notFound;
      case "update scale set":
        return set ? this.#updateScaleSet(set, body) : notFound;
      case "delete scale set":
        if (set) this.model.delete(set.id);
        return set ? { status: 204 } : notFound;
      case "create session":
        return set ? this.#createSession(set, body) : notFound;
      case "refresh session":
      case "delete session": {
        if (!set) return notFound;
        const session = this.model.session(second!);
        if (!session || session.scaleSetId !== set.id) {
          return exception(
            404,
            `${RUNTIME}.RunnerScaleSetSessionNotFoundException`,
            `No session ${second} of runner scale set ${set.id}`,
          );
        }
        if (route.name === "refresh session") {
          return { status: 200, body: this.#sessionJson(set, session) };
        }
        this.model.deleteSession(set, session.sessionId);
        return { status: 204 };
      }
      case "generate jit config":
        return set ? this.#generateJitConfig(set, body) : notFound;
      case "list agents": {
        const name = query.get("agentName");
        const found = this.#runnersIn(scope)
          .filter((r) => name === null || r.name === name);
        return list(found.map(agentJson));
      }
      case "get agent":
      case "delete agent": {
        const runner = this.#runnersIn(scope).find((r) =>
          String(r.id) === first
        );
        if (!runner) {
          return exception(
            404,
            `${TASK}.AgentNotFoundException`,
            `No agent with id ${first}`,
          );
        }
        if (route.name === "get agent") {
          return { status: 200, body: agentJson(runner) };
        }
        if (runner.busy) {
          return exception(
            409,
            `${TASK}.JobStillRunningException`,
            `Agent ${runner.name} is still running job ${runner.jobId}`,
          );
        }
        this.#options.state.deleteRunner(runner.id);
        return { status: 204 };
      }
    }
    return NO_SUCH_ENDPOINT;
  }

  #runnerGroups(scope: RunnerScope, name: string | null): Answer {
    const groups = this.#options.state.groupsOf(scope).filter((g) =>
      name === null || g.name.toLowerCase() === name.toLowerCase()
    );
    return list(groups.map((g) => ({
      id: g.id,
      name: g.name,
      size: 0,
      isDefaultGroup: g.id === 1,
    })));
  }

  #createScaleSet(scope: RunnerScope, body: unknown): Answer {
    const fields = scaleSetFields(body, undefined);
    if (typeof fields === "string") {
      return exception(400, "System.ArgumentException", fields);
    }
    const made = this.model.create(scope, fields);
    if (made === "no group") return this.#noGroup(fields.runnerGroupId);
    if (made === "exists") return this.#exists(fields.name);
    return { status: 200, body: this.#scaleSetJson(made) };
  }

  #updateScaleSet(set: ScaleSet, body: unknown): Answer {
    const fields = scaleSetFields(body, set);
    if (typeof fields === "string") {
      return exception(400, "System.ArgumentException", fields);
    }
    const result = this.model.update(set, fields);
    if (result === "no group") return this.#noGroup(fields.runnerGroupId);
    if (result === "exists") return this.#exists(fields.name);
    return { status: 200, body: this.#scaleSetJson(set) };
  }

  #noGroup(id: number): Answer {
    return exception(
      404,
      `${RUNTIME}.RunnerGroupNotFoundException`,
      `No runner group with id ${id}`,
    );
  }

  #exists(name: string): Answer {
    return exception(
      409,
      `${RUNTIME}.RunnerScaleSetExistsException`,
      `A runner scale set named ${name} exists already in this runner group`,
    );
  }

  #createSession(set: ScaleSet, body: unknown): Answer {
    const owner = (body as Record<string, unknown> | undefined)?.ownerName;
    if (typeof owner !== "string" || owner === "") {
      return exception(400, "System.ArgumentException", "ownerName missing");
    }
    const session = this.model.openSession(set, owner);
    if (session === "conflict") {
      const live = this.model.openSessions()
        .find((s) => s.scaleSetId === set.id);
      return exception(
        409,
        `${RUNTIME}.RunnerScaleSetSessionConflictException`,
        `The actions runner scaleset ${set.name} already has an active session for owner ${live?.ownerName}.`,
      );
    }
    return { status: 200, body: this.#sessionJson(set, session) };
  }

  /** A session as the service shows it, with a new queue token. */
  #sessionJson(set: ScaleSet, session: Session): unknown {
    const ttl = this.#options.queueTokenTtlMs ?? HOUR_MS;
    const expiresAt = Date.now() + ttl;
    const token = this.#jwt(`session:${session.sessionId}`, expiresAt);
    this.#queueTokens.set(token, {
      sessionId: session.sessionId,
      scaleSetId: set.id,
      expiresAt,
    });
    this.#options.issued.push(token);
    return {
      sessionId: session.sessionId,
      ownerName: session.ownerName,
      runnerScaleSet: this.#scaleSetJson(set),
      messageQueueUrl: `${this.#tenant}msgqueue/${session.sessionId}`,
      messageQueueAccessToken: token,
      statistics: this.model.statistics(set),
    };
  }

  #generateJitConfig(set: ScaleSet, body: unknown): Answer {
    const fields = body as Record<string, unknown> | undefined;
    if (typeof fields?.name !== "string" || fields.name === "") {
      return exception(400, "System.ArgumentException", "name missing");
    }
    const workFolder = typeof fields.workFolder === "string"
      ? fields.workFolder
      : "_work";
    const { state } = this.#options;
    const runner = state.createRunner(set.scope, {
      name: fields.name,
      labels: set.labels.map((l) => l.name),
      runnerGroupId: set.runnerGroupId,
      workFolder,
      scaleSetId: set.id,
    });
    if (!runner) {
      return exception(
        409,
        `${TASK}.AgentExistsException`,
        `An agent named ${fields.name} exists already`,
      );
    }
    const live = this.model.runnersOf(set).length;
    if (set.maxCapacity !== undefined && live > set.maxCapacity) {
      this.#options.violate(
        `scale set ${set.id} (${set.name}): runner ${runner.name} made the ` +
          `${live}th live runner, above the announced max capacity ${set.maxCapacity}`,
      );
    }
    const encoded = encodeJitConfig(runner, this.#options.apiUrl);
    this.#options.issued.push(encoded, runner.secret);
    return {
      status: 200,
      body: { runner: agentJson(runner), encodedJITConfig: encoded },
    };
  }

  async #queueCall(call: Call, token: QueueToken): Promise<Answer> {
    const [first, second] = call.route.params;
    if (call.route.name === "acquire jobs") {
      const set = this.model.scaleSet(token.scaleSetId);
      if (!set || String(set.id) !== first) {
        return exception(
          401,
          UNAUTHORIZED,
          "The queue token is for another scale set",
        );
      }
      let ids: unknown;
      try {
        ids = JSON.parse(call.body);
      } catch {
        ids = undefined;
      }
      if (!Array.isArray(ids) || !ids.every((id) => typeof id === "number")) {
        return exception(400, "System.ArgumentException", "Expected [ids]");
      }
      return list(this.model.acquire(set, ids));
    }
    if (token.sessionId !== first) {
      return exception(
        401,
        UNAUTHORIZED,
        "The queue token is for another queue",
      );
    }
    const session = this.model.session(first);
    const set = session && this.model.scaleSet(session.scaleSetId);
    if (!session || !set) return queueNotFound(first);
    if (call.route.name === "delete message") {
      return this.model.ack(set, Number(second)) ? { status: 204 } : exception(
        404,
        `${RUNTIME}.MessageNotFoundException`,
        `No message ${second}`,
      );
    }
    if (call.maxCapacity !== undefined) {
      this.model.announce(set, call.maxCapacity);
    }
    const last = Number(call.query.get("lastMessageId") ?? 0) || 0;
    return await this.#longPoll(session, set, last);
  }

  /**
   * A message at once, else one that comes within the window, else 202.
   * A client that leaves is not noticed (reading `request.signal` makes
   * Deno warn about its legacy abort): its poll ends with the window, and
   * a message it took along is delivered again, as it was not acknowledged.
   */
  async #longPoll(
    session: Session,
    set: ScaleSet,
    lastMessageId: number,
  ): Promise<Answer> {
    const deadline = Date.now() + (this.#options.pollWindowMs ?? 50_000);
    this.model.beginPoll(session);
    try {
      while (true) {
        const found = this.model.poll(session, lastMessageId);
        if (found === "gone") return queueNotFound(session.sessionId);
        if (found) {
          return {
            status: 200,
            body: {
              messageId: found.messageId,
              messageType: "RunnerScaleSetJobMessages",
              body: found.body,
              statistics: this.model.statistics(set),
            },
          };
        }
        const left = deadline - Date.now();
        if (left <= 0 || this.#closing.signal.aborted) return { status: 202 };
        await this.#wait(left);
      }
    } finally {
      this.model.endPoll(session);
    }
  }

  /** Until a change (close() is one) or until `ms` passed. */
  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }

  /** A fault's delay, cut short when the double closes. */
  async #sleep(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until && !this.#closing.signal.aborted) {
      await this.#wait(until - Date.now());
    }
  }

  #scaleSetIn(scope: RunnerScope, id: string): ScaleSet | undefined {
    const set = this.model.scaleSet(Number(id));
    return set && scopeKey(set.scope) === scopeKey(scope) ? set : undefined;
  }

  #runnersIn(scope: RunnerScope): RunnerState[] {
    return this.#options.state.runnersIn(scope);
  }

  #scaleSetJson(set: ScaleSet): unknown {
    return {
      id: set.id,
      name: set.name,
      runnerGroupId: set.runnerGroupId,
      runnerGroupName: this.model.group(set.scope, set.runnerGroupId)?.name ??
        "",
      labels: set.labels,
      RunnerSetting: set.runnerSetting,
      enabled: true,
      createdOn: set.createdOn,
      runnerJitConfigUrl:
        `${this.#tenant}_apis/runtime/runnerscalesets/${set.id}/generatejitconfig`,
      statistics: this.model.statistics(set),
    };
  }

  /** A JWT whose `exp` clients read unverified; signed with a key of ours. */
  #jwt(subject: string, expiresAt: number): string {
    const now = Math.floor(Date.now() / 1000);
    const encode = (value: unknown) =>
      Buffer.from(JSON.stringify(value)).toString("base64url");
    const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${
      encode({
        iss: "github-double",
        sub: subject,
        jti: crypto.randomUUID(),
        iat: now,
        nbf: now,
        exp: Math.floor(expiresAt / 1000),
      })
    }`;
    const signature = createHmac("sha256", this.#jwtKey).update(unsigned)
      .digest("base64url");
    return `${unsigned}.${signature}`;
  }

  #toResponse(answer: Answer, fault: boolean): Response {
    const headers = new Headers(answer.headers);
    if (!headers.has("activityid")) {
      headers.set("ActivityId", crypto.randomUUID());
    }
    if (answer.body === undefined) {
      return new Response(null, { status: answer.status, headers });
    }
    if (!headers.has("content-type")) {
      headers.set("content-type", "application/json; charset=utf-8");
    }
    const text = typeof answer.body === "string"
      ? answer.body
      : JSON.stringify(answer.body);
    const bom = this.#options.bom === true && !fault ? "\uFEFF" : "";
    return new Response(bom + text, { status: answer.status, headers });
  }
}

function list(value: readonly unknown[]): Answer {
  return { status: 200, body: { count: value.length, value } };
}

function queueNotFound(sessionId: string | undefined): Answer {
  return exception(
    404,
    `${RUNTIME}.MessageQueueNotFoundException`,
    `No message queue for session ${sessionId}`,
  );
}

function agentJson(runner: RunnerState) {
  return {
    id: runner.id,
    name: runner.name,
    runnerScaleSetId: runner.scaleSetId ?? 0,
  };
}

/**
 * The scope a config URL names, by its path only: `/ORG`,
 * `/enterprises/ENTERPRISE`, `/OWNER/REPO` (as actions/scaleset reads them).
 */
export function scopeOfConfigUrl(url: string): RunnerScope | undefined {
  let parts: string[];
  try {
    parts = new URL(url).pathname.split("/").filter((p) => p !== "")
      .map(decodeURIComponent);
  } catch {
    return undefined;
  }
  const [first, second] = parts;
  if (parts.length === 1) return { kind: "organization", org: first! };
  if (parts.length !== 2) return undefined;
  return first!.toLowerCase() === "enterprises"
    ? { kind: "enterprise", enterprise: second! }
    : { kind: "repository", owner: first!, repo: second! };
}

/**
 * A scale set's fields from a create or update body; what is left out of
 * an update stays. Labels without a type are "System"; no labels at all
 * means the scale set's name as its one label.
 */
function scaleSetFields(
  body: unknown,
  current: ScaleSet | undefined,
): ScaleSetFields | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return "Expected a RunnerScaleSet object";
  }
  const fields = body as Record<string, unknown>;
  const name = fields.name ?? current?.name;
  if (typeof name !== "string" || name === "") return "name missing";
  const group = fields.runnerGroupId ?? current?.runnerGroupId ?? 1;
  if (typeof group !== "number") return "runnerGroupId is not a number";
  let labels: ScaleSetLabel[] | undefined = current?.labels;
  if (fields.labels !== undefined && fields.labels !== null) {
    if (!Array.isArray(fields.labels)) return "labels is not a list";
    labels = [];
    for (const label of fields.labels as unknown[]) {
      const { name: labelName, type } = (label ?? {}) as Record<
        string,
        unknown
      >;
      if (typeof labelName !== "string" || labelName === "") {
        return "a label has no name";
      }
      labels.push({
        name: labelName,
        type: typeof type === "string" && type !== "" ? type : "System",
      });
    }
  }
  if (!labels || labels.length === 0) labels = [{ name, type: "System" }];
  const setting = (fields.RunnerSetting ?? {}) as Record<string, unknown>;
  const previous = current?.runnerSetting;
  const flag = (key: keyof RunnerSetting) =>
    typeof setting[key] === "boolean"
      ? setting[key] as boolean
      : previous?.[key] ?? false;
  return {
    name,
    runnerGroupId: group,
    labels,
    runnerSetting: {
      ephemeral: flag("ephemeral"),
      isElastic: flag("isElastic"),
      disableUpdate: flag("disableUpdate"),
    },
  };
}

/** Which endpoint a request is, by method and path. */
function routeOf(method: string, path: string): Route | undefined {
  if (path === RUNNER_REGISTRATION_PATH) {
    return method === "POST"
      ? { auth: "remote-auth", name: "runner registration", params: [] }
      : undefined;
  }
  if (!path.startsWith(TENANT_PATH)) return undefined;
  const parts = path.slice(TENANT_PATH.length).split("/")
    .filter((p) => p !== "").map(decodeURIComponent);
  const admin = (name: string, ...params: string[]): Route => ({
    auth: "admin",
    name,
    params,
  });
  const is = (...expected: (string | undefined)[]) =>
    parts.length === expected.length &&
    expected.every((e, i) => e === undefined || e === parts[i]);
  const ss = ["_apis", "runtime", "runnerscalesets"];
  const agents = ["_apis", "distributedtask", "pools", "0", "agents"];
  const [id, subId] = [parts[3], parts[5]];
  switch (method) {
    case "GET":
      if (is("_apis", "runtime", "runnergroups")) return admin("runner groups");
      if (is(...ss)) return admin("list scale sets");
      if (is(...ss, undefined)) return admin("get scale set", id!);
      if (is(...agents)) return admin("list agents");
      if (is(...agents, undefined)) return admin("get agent", parts[5]!);
      if (is("msgqueue", undefined)) {
        return { auth: "queue", name: "get message", params: [parts[1]!] };
      }
      return undefined;
    case "POST":
      if (is(...ss)) return admin("create scale set");
      if (is(...ss, undefined, "sessions")) return admin("create session", id!);
      if (is(...ss, undefined, "generatejitconfig")) {
        return admin("generate jit config", id!);
      }
      if (is(...ss, undefined, "acquirejobs")) {
        return { auth: "queue", name: "acquire jobs", params: [id!] };
      }
      return undefined;
    case "PATCH":
      if (is(...ss, undefined)) return admin("update scale set", id!);
      if (is(...ss, undefined, "sessions", undefined)) {
        return admin("refresh session", id!, subId!);
      }
      return undefined;
    case "DELETE":
      if (is(...ss, undefined)) return admin("delete scale set", id!);
      if (is(...ss, undefined, "sessions", undefined)) {
        return admin("delete session", id!, subId!);
      }
      if (is(...agents, undefined)) return admin("delete agent", parts[5]!);
      if (is("msgqueue", undefined, undefined)) {
        return {
          auth: "queue",
          name: "delete message",
          params: [parts[1]!, parts[2]!],
        };
      }
      return undefined;
  }
  return undefined;
}
