/**
 * Forgejo's REST API (`/api/v1`) over fetch: the admin token or a user's
 * password (Basic, which Forgejo requires for making tokens), a timeout on
 * every request, and retries for GETs and DELETEs that failed on the way
 * (a 5xx, a timeout, a dropped connection): asking again changes nothing
 * more. POSTs and PATCHes are not retried: a runner registered twice would
 * be a leftover; the core backs the machine off instead. Errors carry the method, path, status and Forgejo's message,
 * never a credential.
 */

import { ForgeError } from "../forge.ts";
import type { Secret } from "../../log/mod.ts";

export type Auth =
  | { readonly kind: "token"; readonly token: Secret }
  | {
    readonly kind: "basic";
    readonly user: string;
    readonly password: Secret;
  };

export interface RequestOptions {
  readonly query?: Readonly<Record<string, string | number | boolean>>;
  readonly body?: unknown;
  /** The admin token when undefined. */
  readonly auth?: Auth;
  /** Statuses that are answers, not errors (404 for "already gone"). */
  readonly accept?: readonly number[];
}

export interface Answer<T> {
  readonly status: number;
  readonly data: T;
  readonly headers: Headers;
}

export interface ForgejoClientOptions {
  /** The instance's address, without a trailing slash. */
  readonly url: string;
  readonly token: Secret;
  /** Milliseconds; a request that takes longer fails. */
  readonly requestTimeout: number;
  /** Delays before the retries of a read (ms); [500, 2000] by default. */
  readonly retryDelays?: readonly number[];
}

/** A Forgejo error answer: `{"message": "...", "url": "..."}`. */
interface ApiError {
  readonly message?: string;
}

export class ForgejoClient {
  readonly #options: ForgejoClientOptions;
  #token: Secret;

  constructor(options: ForgejoClientOptions) {
    this.#options = options;
    this.#token = options.token;
  }

  /** Uses this token from now on (SIGHUP re-read its file). */
  setToken(token: Secret): void {
    this.#token = token;
  }

  async request<T>(
    method: "GET" | "POST" | "PATCH" | "DELETE",
    path: string,
    options: RequestOptions = {},
  ): Promise<Answer<T>> {
    const delays = method === "GET" || method === "DELETE"
      ? this.#options.retryDelays ?? [500, 2_000]
      : [];
    for (let attempt = 0;; attempt++) {
      try {
        return await this.#once<T>(method, path, options);
      } catch (error) {
        const transient = error instanceof ForgeError &&
          (error.status === undefined || error.status >= 500);
        const delay = delays[attempt];
        if (!transient || delay === undefined) throw error;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async #once<T>(
    method: string,
    path: string,
    options: RequestOptions,
  ): Promise<Answer<T>> {
    const url = new URL(`${this.#options.url}/api/v1${path}`);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      url.searchParams.set(key, String(value));
    }
    const headers = new Headers({
      "accept": "application/json",
      "user-agent": "forrest",
      "authorization": authorization(
        options.auth ?? { kind: "token", token: this.#token },
      ),
    });
    if (options.body !== undefined) {
      headers.set("content-type", "application/json");
    }
    const what = `${method} ${path}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body),
        signal: AbortSignal.timeout(this.#options.requestTimeout),
      });
    } catch (error) {
      const reason = error instanceof DOMException &&
          error.name === "TimeoutError"
        ? `no answer within ${this.#options.requestTimeout} ms`
        : (error as Error).message;
      throw new ForgeError(`${what}: ${reason}`, undefined, { cause: error });
    }
    const text = await response.text();
    let data: unknown = undefined;
    try {
      data = text === "" ? undefined : JSON.parse(text);
    } catch {
      if (response.ok) {
        throw new ForgeError(
          `${what}: answered ${response.status} with no JSON`,
          response.status,
        );
      }
    }
    if (!response.ok && !options.accept?.includes(response.status)) {
      const message = (data as ApiError | undefined)?.message ??
        text.slice(0, 200);
      throw new ForgeError(
        `${what}: ${response.status} ${message}`.trim(),
        response.status,
      );
    }
    return {
      status: response.status,
      data: data as T,
      headers: response.headers,
    };
  }
}

function authorization(auth: Auth): string {
  if (auth.kind === "token") return `token ${auth.token.reveal()}`;
  const pair = new TextEncoder().encode(
    `${auth.user}:${auth.password.reveal()}`,
  );
  return `Basic ${btoa(String.fromCharCode(...pair))}`;
}
