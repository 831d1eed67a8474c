/**
 * The Actions service of one scope (a repository, an organization or an
 * enterprise), as actions/scaleset talks to it: an admin connection made
 * from a registration token (`POST /actions/runner-registration`), renewed
 * a minute before its JWT expires, and the scale-set endpoints behind it
 * (../shared/research/scale-sets-and-peers.md C.3–C.5, C.12). The message
 * queue of a session is in session.ts.
 */

import { Secret } from "../../../log/mod.ts";
import { ForgeError } from "../../forge.ts";
import {
  jwtExpiry,
  parseScaleSet,
  parseSession,
  type RunnerScaleSet,
  type ScaleSetLabel,
  ScaleSetProtocolError,
  type ScaleSetSession,
} from "./types.ts";

/** A registration token of the scope, from GitHub's REST API. */
export type RegistrationTokenSource = () => Promise<Secret>;

export interface ActionsServiceOptions {
  /** https://api.github.com or https://HOST/api/v3 (where runner-registration is). */
  readonly apiUrl: string;
  /** https://github.com/OWNER/REPO, …/ORG or …/enterprises/SLUG. */
  readonly configUrl: string;
  readonly registrationToken: RegistrationTokenSource;
  /** Milliseconds a request may take (the long poll has its own). */
  readonly requestTimeout: number;
  /** First retry delay (ms), doubling up to 30 s; 1 s as go-retryablehttp. */
  readonly retryBase?: number;
  readonly userAgent?: string;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
}

/** An Actions-service answer that is not a success, with what it said. */
export class ScaleSetError extends ForgeError {
  constructor(
    message: string,
    status: number | undefined,
    /** `…Exception` from the answer's JSON body, if any. */
    readonly typeName: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, status, options);
    this.name = "ScaleSetError";
  }

  /** Whether the exception's name ends with `name` (namespaces vary). */
  is(name: string): boolean {
    return this.typeName !== undefined && this.typeName.endsWith(name);
  }
}

/** Attempts of a request that fails in a way that may pass (C.12). */
const ATTEMPTS = 5;
const MAX_RETRY_DELAY = 30_000;
/** The admin token is renewed this long before it expires (C.3). */
const RENEW_BEFORE = 60_000;
const API_VERSION = "6.0-preview";

interface Admin {
  readonly url: string;
  readonly token: Secret;
  readonly expiresAt: number;
}

export interface RequestOptions {
  readonly body?: unknown;
  /** A queue token instead of the admin token (acquirejobs, the queue). */
  readonly token?: Secret;
  readonly headers?: Record<string, string>;
  /** No retries: the caller has its own (the long poll). */
  readonly once?: boolean;
  readonly timeout?: number;
  readonly signal?: AbortSignal;
  /** An absolute URL (the message queue), not a path of the service. */
  readonly absolute?: boolean;
}

export interface Answer {
  readonly status: number;
  /** The body's JSON; undefined when empty. */
  readonly json: unknown;
}

export class ActionsService {
  readonly #options: ActionsServiceOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  #admin: Admin | undefined;
  #connecting: Promise<Admin> | undefined;

  constructor(options: ActionsServiceOptions) {
    this.#options = options;
    this.#fetch = options.fetch ?? fetch;
    this.#now = options.now ?? Date.now;
  }

  get configUrl(): string {
    return this.#options.configUrl;
  }

  /** Forgets the admin token: the next request makes a new connection. */
  reconnect(): void {
    this.#admin = undefined;
  }

  /**
   * The admin connection, made or renewed when it expires within a
   * minute: a registration token, then runner-registration (which alone
   * also retries 401 and 403: a new token may not be known everywhere yet).
   */
  #connection(): Promise<Admin> {
    const admin = this.#admin;
    if (admin && this.#now() + RENEW_BEFORE < admin.expiresAt) {
      return Promise.resolve(admin);
    }
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(): Promise<Admin> {
    const token = await this.#options.registrationToken();
    const url = `${this.#options.apiUrl}/actions/runner-registration`;
    const answer = await this.#send("POST", url, {
      body: { url: this.#options.configUrl, runner_event: "register" },
      headers: { authorization: `RemoteAuth ${token.reveal()}` },
      retryAlso: [401, 403],
    });
    const data = answer.json as Record<string, unknown> | undefined;
    if (
      typeof data?.url !== "string" || data.url === "" ||
      typeof data.token !== "string" || data.token === ""
    ) {
      throw new ScaleSetError(
        `POST ${url} answered without the Actions service's url and token`,
        answer.status,
        undefined,
      );
    }
    const admin = {
      url: data.url,
      token: new Secret(data.token),
      // A token without a readable expiry is renewed every 10 minutes.
      expiresAt: jwtExpiry(data.token) ?? this.#now() + 10 * 60_000,
    };
    this.#admin = admin;
    return admin;
  }

  /**
   * A request to the service: `path` is joined to its URL, api-version
   * added; the admin token unless `options.token` is given.
   */
  async request(
    method: string,
    path: string,
    options: RequestOptions = {},
  ): Promise<Answer> {
    for (let attempt = 1;; attempt++) {
      let url = path;
      let token = options.token;
      if (!options.absolute || token === undefined) {
        const admin = await this.#connection();
        token ??= admin.token;
        if (!options.absolute) url = joinUrl(admin.url, path);
      }
      if (!options.absolute) {
        const parsed = new URL(url);
        if (!parsed.searchParams.has("api-version")) {
          parsed.searchParams.set("api-version", API_VERSION);
        }
        url = parsed.toString();
      }
      try {
        return await this.#send(method, url, {
          ...options,
          headers: {
            authorization: `Bearer ${token.reveal()}`,
            ...options.headers,
          },
        });
      } catch (error) {
        // The service no longer takes an admin token its JWT says is
        // good (revoked, or the clocks differ): a new connection, once.
        const admin = options.token === undefined;
        if (
          !admin || attempt > 1 || !(error instanceof ScaleSetError) ||
          error.status !== 401
        ) throw error;
        this.#admin = undefined;
      }
    }
  }

  async #send(
    method: string,
    url: string,
    options: RequestOptions & { retryAlso?: readonly number[] },
  ): Promise<Answer> {
    const attempts = options.once ? 1 : ATTEMPTS;
    for (let attempt = 1;; attempt++) {
      let retryAfter: number | undefined;
      let failure: ScaleSetError;
      try {
        const response = await this.#fetch(url, {
          method,
          headers: {
            "content-type": "application/json",
            "user-agent": this.#options.userAgent ?? "forrest",
            ...options.headers,
          },
          ...(options.body === undefined
            ? {}
            : { body: JSON.stringify(options.body) }),
          signal: anySignal(
            options.signal,
            options.timeout ?? this.#options.requestTimeout,
          ),
        });
        // The service may start a body with a UTF-8 BOM (actions/scaleset
        // strips it); text() decodes as UTF-8 and drops it already.
        const body = await response.text();
        if (response.ok) {
          return { status: response.status, json: parseJson(body, url) };
        }
        failure = errorOf(method, url, response, body);
        const retryable = response.status === 429 ||
          (response.status >= 500 && response.status !== 501) ||
          (options.retryAlso ?? []).includes(response.status);
        if (!retryable || attempt >= attempts) throw failure;
        retryAfter = retryAfterMs(response.headers.get("retry-after"));
      } catch (error) {
        if (error instanceof ScaleSetError) throw error;
        if (error instanceof ScaleSetProtocolError) {
          throw new ScaleSetError(error.message, undefined, undefined);
        }
        if (options.signal?.aborted) throw error;
        failure = new ScaleSetError(
          `request ${method} ${withoutQuery(url)} failed: ${
            error instanceof Error ? error.message : String(error)
          }`,
          undefined,
          undefined,
          { cause: error },
        );
        if (attempt >= attempts) throw failure;
      }
      const base = this.#options.retryBase ?? 1_000;
      const delay = Math.min(
        MAX_RETRY_DELAY,
        retryAfter ?? base * 2 ** (attempt - 1),
      );
      await sleep(delay, options.signal);
    }
  }

  // --- Scale sets (C.5) ----------------------------------------------------

  /** A runner group's id by name; the default group is 1, not looked up. */
  async runnerGroupId(name: string | undefined): Promise<number> {
    if (name === undefined || name.toLowerCase() === "default") return 1;
    const { json } = await this.request(
      "GET",
      `_apis/runtime/runnergroups/?groupName=${encodeURIComponent(name)}`,
    );
    const list = listOf(json);
    const group = list[0] as Record<string, unknown> | undefined;
    if (list.length !== 1 || typeof group?.id !== "number") {
      throw new ScaleSetError(
        list.length === 0
          ? `runner group "${name}" does not exist`
          : `runner group "${name}" is ambiguous (${list.length} found)`,
        404,
        undefined,
      );
    }
    return group.id;
  }

  async getScaleSet(
    runnerGroupId: number,
    name: string,
  ): Promise<RunnerScaleSet | undefined> {
    const { json } = await this.request(
      "GET",
      `_apis/runtime/runnerscalesets?runnerGroupId=${runnerGroupId}&name=${
        encodeURIComponent(name)
      }`,
    );
    const list = listOf(json);
    if (list.length > 1) {
      throw new ScaleSetError(
        `${list.length} runner scale sets are named "${name}"`,
        undefined,
        undefined,
      );
    }
    return list.length === 0 ? undefined : parseScaleSet(list[0]);
  }

  async createScaleSet(
    name: string,
    runnerGroupId: number,
    labels: readonly string[],
  ): Promise<RunnerScaleSet> {
    const { json } = await this.request(
      "POST",
      "_apis/runtime/runnerscalesets",
      {
        body: scaleSetBody(name, runnerGroupId, labels),
      },
    );
    return parseScaleSet(json);
  }

  async updateScaleSet(
    id: number,
    name: string,
    runnerGroupId: number,
    labels: readonly string[],
  ): Promise<RunnerScaleSet> {
    const { json } = await this.request(
      "PATCH",
      `_apis/runtime/runnerscalesets/${id}`,
      { body: scaleSetBody(name, runnerGroupId, labels) },
    );
    return parseScaleSet(json);
  }

  async createSession(
    scaleSetId: number,
    owner: string,
  ): Promise<ScaleSetSession> {
    const { json } = await this.request(
      "POST",
      `_apis/runtime/runnerscalesets/${scaleSetId}/sessions`,
      { body: { ownerName: owner } },
    );
    return parseSession(json);
  }

  async refreshSession(
    scaleSetId: number,
    sessionId: string,
  ): Promise<ScaleSetSession> {
    const { json } = await this.request(
      "PATCH",
      `_apis/runtime/runnerscalesets/${scaleSetId}/sessions/${sessionId}`,
    );
    return parseSession(json);
  }

  /** Ends a session; one that is gone already is not an error. */
  async deleteSession(scaleSetId: number, sessionId: string): Promise<void> {
    try {
      await this.request(
        "DELETE",
        `_apis/runtime/runnerscalesets/${scaleSetId}/sessions/${sessionId}`,
      );
    } catch (error) {
      if (error instanceof ScaleSetError && error.status === 404) return;
      throw error;
    }
  }

  /** A just-in-time runner of the scale set. */
  async generateJitConfig(
    scaleSetId: number,
    name: string,
  ): Promise<{ id: number; name: string; jitConfig: Secret }> {
    const { json } = await this.request(
      "POST",
      `_apis/runtime/runnerscalesets/${scaleSetId}/generatejitconfig`,
      { body: { name, workFolder: "_work" } },
    );
    const data = json as Record<string, unknown> | undefined;
    const runner = data?.runner as Record<string, unknown> | undefined;
    if (
      typeof runner?.id !== "number" ||
      typeof data?.encodedJITConfig !== "string"
    ) {
      throw new ScaleSetError(
        "generatejitconfig answered without runner.id and encodedJITConfig",
        undefined,
        undefined,
      );
    }
    return {
      id: runner.id,
      name: typeof runner.name === "string" ? runner.name : name,
      jitConfig: new Secret(data.encodedJITConfig),
    };
  }

  /** Removes a runner; one that is gone already is not an error. */
  async removeRunner(runnerId: number): Promise<void> {
    try {
      await this.request(
        "DELETE",
        `_apis/distributedtask/pools/0/agents/${runnerId}`,
      );
    } catch (error) {
      if (
        error instanceof ScaleSetError &&
        (error.status === 404 || error.is("AgentNotFoundException"))
      ) return;
      throw error;
    }
  }
}

function scaleSetBody(
  name: string,
  runnerGroupId: number,
  labels: readonly string[],
) {
  const list: ScaleSetLabel[] = labels.map((label) => ({
    name: label,
    type: "System",
  }));
  return {
    name,
    runnerGroupId,
    labels: list,
    RunnerSetting: { ephemeral: true, isElastic: true, disableUpdate: true },
  };
}

/** `{count, value: [...]}` → value. */
function listOf(json: unknown): unknown[] {
  const value = (json as Record<string, unknown> | undefined)?.value;
  return Array.isArray(value) ? value : [];
}

function joinUrl(base: string, path: string): string {
  return base.replace(/\/+$/, "") + "/" + path.replace(/^\/+/, "");
}

function withoutQuery(url: string): string {
  return url.replace(/\?.*$/, "");
}

function parseJson(body: string, url: string): unknown {
  if (body.trim() === "") return undefined;
  try {
    return JSON.parse(body);
  } catch {
    throw new ScaleSetProtocolError(
      `${withoutQuery(url)} answered with a body that is not JSON`,
    );
  }
}

/**
 * `request METHOD URL failed (status=…, activity_id=…): Type: message`,
 * as actions/scaleset words it; a text/plain body is shown as it is.
 */
function errorOf(
  method: string,
  url: string,
  response: Response,
  body: string,
): ScaleSetError {
  let typeName: string | undefined;
  let detail = body.trim().slice(0, 500);
  try {
    const json = JSON.parse(body);
    if (typeof json?.typeName === "string") typeName = json.typeName;
    if (typeof json?.message === "string") {
      detail = typeName
        ? `${shortType(typeName)}: ${json.message}`
        : json.message;
    }
  } catch {
    // Not JSON: the text as it is.
  }
  const activity = response.headers.get("activityid") ??
    response.headers.get("x-github-request-id");
  return new ScaleSetError(
    `request ${method} ${withoutQuery(url)} failed (status=${response.status}${
      activity ? `, activity_id=${activity}` : ""
    })${detail ? `: ${detail}` : ""}`,
    response.status,
    typeName,
  );
}

function shortType(typeName: string): string {
  return typeName.slice(typeName.lastIndexOf(".") + 1);
}

function retryAfterMs(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function anySignal(signal: AbortSignal | undefined, timeout: number) {
  const timer = AbortSignal.timeout(timeout);
  return signal ? AbortSignal.any([signal, timer]) : timer;
}

/** Waits `ms`, or less when `signal` aborts (then throws its reason). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
