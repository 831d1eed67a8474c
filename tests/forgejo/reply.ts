/**
 * What every endpoint handler of the double gets and gives: the call, and
 * an answer before it becomes a Response. Errors have Forgejo's APIError
 * shape, `{"message", "url"}`, the url being the instance's swagger page.
 */

import type { Caller } from "./auth.ts";
import type { MatchedOperation } from "./swagger.ts";
import type { ForgejoState } from "./state.ts";

/** An answer; `body` undefined means none (204). */
export interface Reply {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** One API call, authenticated (or anonymous: `caller` undefined). */
export interface Call {
  readonly op: MatchedOperation;
  readonly method: string;
  /** The request URL, for Link headers. */
  readonly url: URL;
  /** The instance URL, without `/api/v1`. */
  readonly base: string;
  readonly query: URLSearchParams;
  readonly headers: Headers;
  readonly rawBody: string;
  readonly caller: Caller | undefined;
  readonly state: ForgejoState;
  /** The version the double plays, e.g. "15.0.3", and its major number. */
  readonly version: string;
  readonly major: number;
  readonly now: number;
}

export function apiError(base: string, status: number, message: string): Reply {
  return { status, body: { message, url: `${base}/api/swagger` } };
}

/** Forgejo's `ctx.NotFound()`: its own message, `errors` a nil slice. */
export function notFound(base: string): Reply {
  return {
    status: 404,
    body: {
      message: "The target couldn't be found.",
      url: `${base}/api/swagger`,
      errors: null,
    },
  };
}

/** `reqToken()`: anonymous calls get 401. */
export function requireSignedIn(call: Call): Reply | undefined {
  return call.caller
    ? undefined
    : apiError(call.base, 401, "token is required");
}

/**
 * The JSON body as Forgejo's `bind()` reads it: JSON content only (an
 * empty or other Content-Type is refused, as go-chi/binding does), then
 * `required` fields (`binding:"Required"`); 422 otherwise.
 */
export function bindBody(
  call: Call,
  required: readonly string[],
): Record<string, unknown> | Reply {
  const type = call.headers.get("content-type") ?? "";
  if (!type.includes("json")) {
    return apiError(
      call.base,
      422,
      `[]: ${type === "" ? "Empty Content-Type" : "Unsupported Content-Type"}`,
    );
  }
  let body: unknown;
  try {
    body = call.rawBody === "" ? {} : JSON.parse(call.rawBody);
  } catch {
    return apiError(call.base, 422, "[]: DeserializationError");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return apiError(call.base, 422, "[]: DeserializationError");
  }
  const fields = body as Record<string, unknown>;
  for (const name of required) {
    if (fields[name] === undefined || fields[name] === "") {
      const goName = name.replace(
        /(^|_)(\w)/g,
        (_, __, c: string) => c.toUpperCase(),
      );
      return apiError(call.base, 422, `[${goName}]: Required`);
    }
  }
  return fields;
}

export function isReply(value: unknown): value is Reply {
  return typeof value === "object" && value !== null && "status" in value &&
    typeof (value as Reply).status === "number";
}

/**
 * Page and limit as Forgejo's `GetListOptions` reads them: page from 1,
 * limit 30 by default and at most 50 (`[api] DEFAULT_PAGING_NUM`,
 * `MAX_RESPONSE_ITEMS`); with `X-Total-Count` and, when there are other
 * pages, a `Link` header (next, last, first, prev) like `SetLinkHeader`.
 */
export function paginate<T>(
  call: Call,
  items: readonly T[],
): { page: T[]; headers: Record<string, string> } {
  const page = Math.max(
    1,
    Number.parseInt(call.query.get("page") ?? "", 10) || 1,
  );
  let limit = Number.parseInt(call.query.get("limit") ?? "", 10) || 0;
  if (limit <= 0) limit = 30;
  limit = Math.min(limit, 50);
  const headers: Record<string, string> = {
    "x-total-count": String(items.length),
  };
  const pages = Math.max(1, Math.ceil(items.length / limit));
  const link = (n: number, rel: string) => {
    const url = new URL(call.url);
    url.searchParams.set("page", String(n));
    return `<${call.base}${url.pathname}${url.search}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page < pages) links.push(link(page + 1, "next"), link(pages, "last"));
  if (page > 1) links.push(link(1, "first"), link(page - 1, "prev"));
  if (links.length > 0) headers.link = links.join(",");
  return { page: items.slice((page - 1) * limit, page * limit), headers };
}
