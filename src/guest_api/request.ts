/**
 * What a guest API request asks for, read from its raw request line and
 * headers: pure, so every hostile path and header is a table test.
 *
 * The path is read as sent (Deno does not normalise it; URL parsing would
 * resolve `..` and `%2e%2e` away and hide them): `/artifact/<store>/<path…>`,
 * empty segments dropped as the original does, each segment percent-decoded,
 * and `.` or `..` (also encoded), `/` or NUL inside a segment refused.
 */

/** A request the API answers with an error, and the answer. */
export interface Refusal {
  readonly status: 400 | 404 | 405;
  readonly message: string;
}

export interface UploadTarget {
  readonly store: string;
  /** Decoded file path segments below the store, at least one. */
  readonly segments: readonly string[];
  /** The same segments, percent-encoded, for Content-Location. */
  readonly rawPath: string;
}

/** Longest file name Linux allows, in bytes. */
const NAME_MAX = 255;
/** Most folders deep a path may go, and most bytes it may have. */
const MAX_DEPTH = 32;
const MAX_PATH = 1024;
/** The temporary names of uploads in progress (upload.ts). */
export const TEMPORARY = /^\.forrest-upload-[0-9a-f]{16}$/;

/** The path and query of a request URL, as sent by the client. */
export function rawPathOf(url: string): string {
  const afterScheme = url.indexOf("//");
  const start = url.indexOf("/", afterScheme < 0 ? 0 : afterScheme + 2);
  if (start < 0) return "/";
  const path = url.slice(start);
  const query = path.search(/[?#]/);
  return query < 0 ? path : path.slice(0, query);
}

/**
 * Reads `/artifact/<store>/<path…>`. A path outside /artifact/ is a 404; an
 * empty, dotted or undecodable file path is a 400.
 */
export function parseUploadPath(rawPath: string): UploadTarget | Refusal {
  const parts = rawPath.split("/").filter((part) => part !== "");
  if (parts[0] !== "artifact") {
    return { status: 404, message: "not found" };
  }
  const rawSegments = parts.slice(2);
  if (parts[1] === undefined || rawSegments.length === 0) {
    return {
      status: 400,
      message: "request did not contain an artifact store name and a path",
    };
  }
  if (rawSegments.length > MAX_DEPTH || rawPath.length > MAX_PATH) {
    return {
      status: 400,
      message:
        `the path is longer than ${MAX_DEPTH} segments or ${MAX_PATH} bytes`,
    };
  }
  const decoded: string[] = [];
  for (const raw of [parts[1], ...rawSegments]) {
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return {
        status: 400,
        message: `path segment "${raw}" is not valid percent-encoded UTF-8`,
      };
    }
    if (segment === "." || segment === "..") {
      return { status: 400, message: "path segments may not be . or .." };
    }
    // Control characters would make file names that forge log lines.
    if (segment.includes("/") || hasControl(segment)) {
      return {
        status: 400,
        message: `path segment "${raw}" holds a / or a control character`,
      };
    }
    if (TEMPORARY.test(segment)) {
      return {
        status: 400,
        message: `"${raw}" is the name of an upload in progress`,
      };
    }
    if (new TextEncoder().encode(segment).length > NAME_MAX) {
      return {
        status: 400,
        message: `path segment "${
          raw.slice(0, 40)
        }…" is longer than ${NAME_MAX} bytes`,
      };
    }
    decoded.push(segment);
  }
  return {
    store: decoded[0]!,
    segments: decoded.slice(1),
    rawPath: decoded.slice(1).map(encodeURIComponent).join("/"),
  };
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

export function isRefusal(value: object): value is Refusal {
  return "status" in value;
}

/**
 * `Authorization: Bearer <run token> [<store token>]`, split on whitespace;
 * any other scheme gives no tokens (the original's rule), and a request
 * without a run token is one with an unknown token.
 */
export function parseAuthorization(
  header: string | null,
): { readonly run: string; readonly store: string | undefined } | undefined {
  const words = (header ?? "").trim().split(/\s+/);
  if (words[0] !== "Bearer" || words.length < 2 || words.length > 3) {
    return undefined;
  }
  return { run: words[1]!, store: words[2] };
}
