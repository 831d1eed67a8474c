/**
 * A test double of the Forgejo 15 HTTP API on 127.0.0.1: the endpoints
 * Forrest uses (`/api/v1`, routed and checked by Forgejo 15.0.3's own
 * swagger description: a mismatch in a request or in the double's answer
 * fails the test at `close()`), a generic package registry
 * (`/api/packages`), and `/_guest/forgejo/` for the runner stand-in in
 * test VMs. It behaves as `shared/research/forgejo.md` says Forgejo does.
 */

import { type AuthKind, authKindOf } from "./auth.ts";
import { handleGuest } from "./guest.ts";
import {
  handlePackages,
  type PackageReply,
  type PackageUpload,
} from "./packages.ts";
import { notFound, type Reply } from "./reply.ts";
import { handleApi, implemented } from "./rest.ts";
import { standinRunnerBytes } from "./standin.ts";
import { ForgejoState, type JobStatus } from "./state.ts";
import { loadSwagger, type MatchedOperation, type Swagger } from "./swagger.ts";

export interface ForgejoDoubleOptions {
  /** What `GET /version` says (default "15.0.3"); below 15 the runner API is gone. */
  readonly version?: string;
  /** The clock in ms (default Date.now), for runners going offline. */
  readonly now?: () => number;
}

/** An API request the double answered; `/_guest/` requests are not recorded. */
export interface RecordedRequest {
  readonly method: string;
  /** The whole path, `/api/v1/…` or `/api/packages/…`. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  readonly status: number;
  readonly operationId?: string;
  readonly auth: AuthKind;
}

export interface FaultMatch {
  readonly method?: string;
  /** Tested against the whole path (`/api/v1/repos/…`). */
  readonly path: RegExp;
}

export interface Fault {
  readonly status: number;
  /** Default: an APIError naming the fault. */
  readonly body?: unknown;
  /** How many matching requests get it (default 1). */
  readonly times?: number;
}

export interface QueueJobOptions {
  readonly owner: string;
  readonly repo: string;
  readonly runsOn: readonly string[];
  readonly name?: string;
  /** What the stand-in runs with `sh -c`; nothing by default. */
  readonly script?: string;
}

/** A job attempt as queued: Forrest starts a runner for its handle. */
export interface QueuedJob {
  readonly id: number;
  readonly handle: string;
  readonly attempt: number;
}

export interface JobView extends QueuedJob {
  readonly status: JobStatus;
  readonly taskId: number;
  readonly runnerId?: number;
  readonly exitCode?: number;
  /** "owner/repo". */
  readonly repo: string;
}

export interface RunnerView {
  readonly id: number;
  readonly uuid: string;
  readonly name: string;
  /** "repo:owner/repo" or "org:name". */
  readonly scope: string;
  readonly ephemeral: boolean;
  readonly labels: readonly string[];
  readonly status: "offline" | "idle" | "active";
}

export interface UserView {
  readonly login: string;
  readonly admin: boolean;
  readonly mustChangePassword: boolean;
  readonly email: string;
  readonly fullName: string;
  readonly createdBy?: string;
}

export interface TokenView {
  readonly id: number;
  readonly name: string;
  readonly scopes: readonly string[];
}

interface ArmedFault {
  readonly match: FaultMatch;
  readonly fault: Fault;
  left: number;
}

export class ForgejoDouble implements AsyncDisposable {
  /** The instance URL, like https://codeberg.org (no `/api/v1`). */
  readonly url: string;
  /** Swagger mismatches and unimplemented operations; `close()` throws while any. */
  readonly violations: string[] = [];
  readonly requests: RecordedRequest[] = [];
  readonly packageUploads: PackageUpload[] = [];

  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #swagger: Swagger;
  readonly #state = new ForgejoState();
  readonly #version: string;
  readonly #major: number;
  readonly #now: () => number;
  readonly #faults: ArmedFault[] = [];
  #closed = false;

  /** Starts a double on 127.0.0.1 on a free port. */
  static async start(
    options: ForgejoDoubleOptions = {},
  ): Promise<ForgejoDouble> {
    return new ForgejoDouble(await loadSwagger(), options);
  }

  private constructor(swagger: Swagger, options: ForgejoDoubleOptions) {
    this.#swagger = swagger;
    this.#version = options.version ?? "15.0.3";
    this.#major = Number(/^v?(\d+)/.exec(this.#version)?.[1] ?? 0);
    this.#now = options.now ?? Date.now;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#handle(request),
    );
    this.url = `http://127.0.0.1:${this.#server.addr.port}`;
  }

  /** A user; `password` is random unless given. */
  addUser(
    login: string,
    options: {
      admin?: boolean;
      password?: string;
      mustChangePassword?: boolean;
      fullName?: string;
    } = {},
  ): void {
    this.#state.addUser(login, options);
  }

  /** A token of `login` (name `token-N` unless given); returns its secret. */
  addToken(login: string, scopes: readonly string[], name?: string): string {
    return this.#state.addToken(login, scopes, name).secret;
  }

  /** An organization; `owners` (existing users) may manage its runners. */
  addOrg(name: string, owners: readonly string[] = []): void {
    this.#state.addOrg(name, owners);
  }

  /** A repository of a user or an organization. */
  addRepo(owner: string, repo: string): { id: number } {
    return { id: this.#state.addRepo(owner, repo).id };
  }

  /** A new waiting job (attempt 1) in a repository. */
  queueJob(options: QueueJobOptions): QueuedJob {
    const repo = this.#state.repo(options.owner, options.repo);
    if (!repo) {
      throw new Error(`No repository ${options.owner}/${options.repo}`);
    }
    const job = this.#state.queueJob(repo, {
      name: options.name ?? "job",
      runsOn: options.runsOn,
      script: options.script ?? "",
    });
    return { id: job.id, handle: job.handle, attempt: job.attempt };
  }

  /** Re-runs a finished job: same id, next attempt, new handle, waiting. */
  rerunJob(id: number): QueuedJob {
    const job = this.#state.rerun(id);
    return { id: job.id, handle: job.handle, attempt: job.attempt };
  }

  /** Cancels a waiting or running job, as a user would. */
  cancelJob(id: number): void {
    this.#state.cancel(id);
  }

  job(id: number): JobView | undefined {
    const job = this.#state.job(id);
    if (!job) return undefined;
    const repo = this.#state.repoById(job.repoId)!;
    return {
      id: job.id,
      handle: job.handle,
      attempt: job.attempt,
      status: job.status,
      taskId: job.taskId,
      ...(job.runnerId === undefined ? {} : { runnerId: job.runnerId }),
      ...(job.exitCode === undefined ? {} : { exitCode: job.exitCode }),
      repo: `${repo.owner}/${repo.name}`,
    };
  }

  /** Every runner of every scope, as it is now. */
  runners(): RunnerView[] {
    const now = this.#now();
    return this.#state.runners().map((r) => {
      let scope: string;
      if (r.scope.kind === "repo") {
        const repo = this.#state.repoById(r.scope.repoId)!;
        scope = `repo:${repo.owner}/${repo.name}`;
      } else {
        scope = `org:${this.#state.orgById(r.scope.orgId)!.name}`;
      }
      return {
        id: r.id,
        uuid: r.uuid,
        name: r.name,
        scope,
        ephemeral: r.ephemeral,
        labels: [...r.labels],
        status: this.#state.runnerStatus(r, now),
      };
    });
  }

  users(): UserView[] {
    return this.#state.users().map((u) => ({
      login: u.login,
      admin: u.admin,
      mustChangePassword: u.mustChangePassword,
      email: u.email,
      fullName: u.fullName,
      ...(u.createdBy === undefined ? {} : { createdBy: u.createdBy }),
    }));
  }

  tokensOf(login: string): TokenView[] {
    return this.#state.tokensOf(login).map((t) => ({
      id: t.id,
      name: t.name,
      scopes: [...t.scopes],
    }));
  }

  /** The next `times` (default 1) API requests matching get `fault` instead. */
  failNext(match: FaultMatch, fault: Fault): void {
    this.#faults.push({ match, fault, left: fault.times ?? 1 });
  }

  /**
   * Stops the server.
   *
   * @throws listing the violations, if any were recorded
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#server.shutdown();
    if (this.violations.length > 0) {
      throw new Error(
        `The Forgejo double saw ${this.violations.length} violation(s):\n` +
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

  async #handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    try {
      if (url.pathname.startsWith("/_guest/forgejo/")) {
        return await handleGuest(
          this.#state,
          {
            url,
            method: request.method,
            headers: request.headers,
            body: await request.text(),
          },
          standinRunnerBytes,
          this.#now(),
        );
      }
      if (url.pathname.startsWith("/api/packages/")) {
        const body = new Uint8Array(await request.arrayBuffer());
        const fault = this.#fault(request.method, url.pathname);
        const reply = fault ??
          handlePackages(this.#state, this.packageUploads, {
            method: request.method,
            path: url.pathname,
            headers: request.headers,
            body,
          });
        this.#record(request, url, reply.status, undefined);
        return fault ? toResponse(fault) : textResponse(reply);
      }
      const body = await request.text();
      const reply = this.#api(request, url, body);
      return toResponse(reply);
    } catch (error) {
      this.violations.push(`the double failed on ${url.pathname}: ${error}`);
      return new Response(String(error), { status: 500 });
    }
  }

  /** `/api/v1/…`: checked against the swagger, answered, recorded. */
  #api(request: Request, url: URL, body: string): Reply {
    const base = this.#swagger.basePath;
    const op = url.pathname.startsWith(`${base}/`)
      ? this.#swagger.matchOperation(
        request.method,
        url.pathname.slice(base.length),
      )
      : undefined;
    let reply: Reply;
    if (!op) {
      reply = this.#fault(request.method, url.pathname) ?? notFound(this.url);
    } else {
      this.#violate(op, "request", [
        ...this.#swagger.checkParameters(op, url.searchParams),
        ...this.#swagger.checkBody(op, body),
      ]);
      reply = this.#fault(request.method, url.pathname) ??
        this.#answer(op, request, url, body);
    }
    this.#record(request, url, reply.status, op?.operationId);
    return reply;
  }

  #answer(
    op: MatchedOperation,
    request: Request,
    url: URL,
    body: string,
  ): Reply {
    if (!implemented(op.operationId)) {
      this.violations.push(
        `${describe(op)}: not implemented by the Forgejo double (501)`,
      );
    }
    const reply = handleApi({
      op,
      method: request.method,
      url,
      base: this.url,
      query: url.searchParams,
      headers: request.headers,
      rawBody: body,
      state: this.#state,
      version: this.#version,
      major: this.#major,
      now: this.#now(),
    });
    if (reply.status !== 501) {
      this.#violate(
        op,
        `response ${reply.status}`,
        this.#swagger.checkResponse(op, reply.status, reply.body),
      );
    }
    return reply;
  }

  /** The armed fault for this request, used up by one. */
  #fault(method: string, path: string): Reply | undefined {
    const armed = this.#faults.find((f) =>
      f.left > 0 &&
      (f.match.method === undefined ||
        f.match.method.toUpperCase() === method.toUpperCase()) &&
      f.match.path.test(path)
    );
    if (!armed) return undefined;
    armed.left--;
    if (armed.left === 0) this.#faults.splice(this.#faults.indexOf(armed), 1);
    const { status, body } = armed.fault;
    return {
      status,
      body: body === undefined
        ? {
          message: `fault injected: ${status}`,
          url: `${this.url}/api/swagger`,
        }
        : body,
    };
  }

  #record(
    request: Request,
    url: URL,
    status: number,
    operationId: string | undefined,
  ): void {
    this.requests.push({
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      status,
      ...(operationId === undefined ? {} : { operationId }),
      auth: authKindOf(this.#state, request.headers.get("authorization")),
    });
  }

  #violate(op: MatchedOperation, what: string, problems: readonly string[]) {
    for (const problem of problems) {
      this.violations.push(`${describe(op)} ${what}: ${problem}`);
    }
  }
}

function describe(op: MatchedOperation): string {
  return `${op.method} ${op.template} (${op.operationId})`;
}

function toResponse(reply: Reply): Response {
  const headers = new Headers(reply.headers);
  if (reply.body === undefined) {
    return new Response(null, { status: reply.status, headers });
  }
  headers.set("content-type", "application/json;charset=utf-8");
  return new Response(JSON.stringify(reply.body), {
    status: reply.status,
    headers,
  });
}

function textResponse(reply: PackageReply): Response {
  return new Response(reply.text ?? null, {
    status: reply.status,
    headers: {
      ...(reply.text === undefined
        ? {}
        : { "content-type": "text/plain; charset=utf-8" }),
      ...reply.headers,
    },
  });
}
