/**
 * The guest API: what a guest may ask of the host, and nothing else. It
 * listens on the host's 127.0.0.1 at a port of its own (never on the API's
 * listeners, which serve /status and /metrics), and guests reach it at
 * FORREST_API_URL through their network's one forward for it
 * (launch/guest_network.ts). Every call shows a run token, which names the
 * run; a request with an unknown token learns nothing but that.
 *
 * `PUT /artifact/<store>/<path…>`: the original's artifact upload, so that
 * the forrest-runner/upload-artifact action works unchanged. 201 with
 * Content-Location; 400 for a bad path; 404 for an unknown token or store;
 * 405 for other methods; 409 where a file and a folder of the path collide;
 * 507 when the run's quota for the store is used up.
 */

import { getLogger } from "@logtape/logtape";
import { errorText } from "../log/mod.ts";
import {
  isRefusal,
  parseAuthorization,
  parseUploadPath,
  rawPathOf,
} from "./request.ts";
import { findStore, RunRegistry } from "./runs.ts";
import { writeUpload } from "./upload.ts";

/** What became of a guest API request, for metrics. */
export type GuestApiOutcome =
  | "stored"
  | "over_quota"
  | "unknown_token"
  | "unknown_store"
  | "bad_request"
  | "cut"
  | "conflict"
  | "not_found"
  | "bad_method"
  | "busy";

/**
 * Limits per run, so that one job cannot take the daemon's file
 * descriptors (each upload holds a socket and a file) or a store's inodes
 * (empty files cost no quota).
 */
export const UPLOAD_LIMITS = Object.freeze({
  /** Uploads of one run at the same time. */
  active: 8,
  /** Files one run may store, over all its stores. */
  files: 10_000,
  /** A read that brings nothing for this long cuts an upload off; ms. */
  idleTimeout: 60_000,
});

export interface GuestApiOptions {
  /** Told of every answer, with the bytes stored (0 unless "stored"). */
  readonly observe?: (outcome: GuestApiOutcome, bytes: number) => void;
  /** UPLOAD_LIMITS.idleTimeout unless set (tests). */
  readonly idleTimeout?: number;
}

export class GuestApi {
  readonly runs = new RunRegistry();
  readonly #log = getLogger(["forrest", "guest-api"]);
  readonly #observe: NonNullable<GuestApiOptions["observe"]>;
  readonly #idleTimeout: number;
  #server: Deno.HttpServer<Deno.NetAddr> | undefined;

  constructor(options: GuestApiOptions = {}) {
    this.#observe = options.observe ?? (() => {});
    this.#idleTimeout = options.idleTimeout ?? UPLOAD_LIMITS.idleTimeout;
  }

  /**
   * Listens on 127.0.0.1 at a port the kernel picks; resolves to the port.
   */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      try {
        this.#server = Deno.serve({
          hostname: "127.0.0.1",
          port: 0,
          onListen: ({ port }) => resolve(port),
          onError: (error) => {
            this.#log.error("Guest API: {error}", { error: errorText(error) });
            return text(500, "internal error");
          },
        }, (request) => this.handle(request));
      } catch (error) {
        reject(error);
      }
    });
  }

  /** The port it listens on. */
  get port(): number {
    if (!this.#server) throw new Error("The guest API is not listening");
    return this.#server.addr.port;
  }

  async close(): Promise<void> {
    await this.#server?.shutdown();
    this.#server = undefined;
  }

  async handle(request: Request): Promise<Response> {
    const { response, outcome, bytes } = await this.#answer(request);
    this.#observe(outcome, bytes);
    return response;
  }

  async #answer(
    request: Request,
  ): Promise<
    { response: Response; outcome: GuestApiOutcome; bytes: number }
  > {
    const answer = (
      outcome: GuestApiOutcome,
      response: Response,
      bytes = 0,
    ) => ({ response, outcome, bytes });
    // Deno puts the Host header into request.url: one that holds more than
    // a host and port would change the path read from it.
    const host = request.headers.get("host") ?? "";
    if (!/^[A-Za-z0-9.:[\]-]*$/.test(host)) {
      return answer("bad_request", text(400, "bad Host header"));
    }
    const target = parseUploadPath(rawPathOf(request.url));
    if (isRefusal(target) && target.status === 404) {
      return answer("not_found", text(404, target.message));
    }
    if (request.method !== "PUT") {
      return answer(
        "bad_method",
        text(405, "only artifact upload (PUT) is implemented", {
          Allow: "PUT",
        }),
      );
    }
    if (isRefusal(target)) {
      return answer("bad_request", text(target.status, target.message));
    }
    const auth = parseAuthorization(request.headers.get("authorization"));
    const run = auth && this.runs.find(auth.run);
    if (!auth || !run) {
      return answer(
        "unknown_token",
        text(404, "the run token does not belong to a known machine"),
      );
    }
    const store = findStore(run, target.store, auth.store);
    if (!store) {
      return answer(
        "unknown_store",
        text(
          404,
          "the artifact store is not configured for this machine (or its token does not match)",
        ),
      );
    }
    if (run.uploads.active >= UPLOAD_LIMITS.active) {
      return answer(
        "busy",
        text(
          429,
          `this run has ${UPLOAD_LIMITS.active} uploads under way already`,
        ),
      );
    }
    if (run.uploads.stored >= UPLOAD_LIMITS.files) {
      return answer(
        "over_quota",
        text(507, `this run has stored ${UPLOAD_LIMITS.files} files already`),
      );
    }
    const length = request.headers.get("content-length");
    const declared = length !== null && /^\d+$/.test(length)
      ? Number(length)
      : undefined;
    run.uploads.active++;
    let result;
    try {
      result = await writeUpload({
        root: store.path,
        segments: target.segments,
        body: request.body,
        quota: store.quota,
        declared,
        idleTimeout: this.#idleTimeout,
      });
    } finally {
      run.uploads.active--;
    }
    if (result.kind === "written") run.uploads.stored++;
    switch (result.kind) {
      case "written":
        this.#log.info(
          "{runner} uploaded {path} ({bytes} bytes) to artifact store {store}",
          {
            runner: run.runner,
            path: target.segments.join("/"),
            bytes: result.bytes,
            store: store.name,
          },
        );
        return answer(
          "stored",
          new Response(null, {
            status: 201,
            headers: { "Content-Location": store.url + target.rawPath },
          }),
          result.bytes,
        );
      case "conflict":
        return answer("conflict", text(409, result.message));
      case "over-quota":
      case "cut":
        this.#log.warn("{runner}: upload of {path} failed: {why}", {
          runner: run.runner,
          path: target.segments.join("/"),
          why: result.message,
        });
        return result.kind === "cut"
          ? answer("cut", text(400, result.message))
          : answer("over_quota", text(507, result.message));
    }
  }
}

function text(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return new Response(`${message}\n`, {
    status,
    headers: { "Content-Type": "text/plain; charset=utf-8", ...headers },
  });
}
