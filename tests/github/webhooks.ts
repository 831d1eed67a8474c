/**
 * Webhook deliveries as GitHub makes them: a signed JSON POST, to a URL or
 * (for a Forrest listening on a unix socket) to a socket path.
 */

import { createHmac } from "node:crypto";

/** Where webhooks go. */
export type WebhookTarget =
  | { readonly url: string }
  | { readonly unixSocket: string; readonly path?: string };

/** How a delivery is signed: tests of Forrest's checks need wrong ones. */
export type Signature = "valid" | "none" | "wrong" | { readonly over: string };

export interface SendOptions {
  /** `X-GitHub-Delivery`; a random UUID unless given. */
  readonly delivery?: string;
  readonly signature?: Signature;
  /** Signs with this secret instead of the double's (a rotated secret). */
  readonly secret?: string;
  /** The raw body to send instead of the JSON of the payload. */
  readonly body?: Uint8Array | string;
}

/** One attempted delivery; `status` 0 when there was no HTTP answer. */
export interface Delivery {
  readonly event: string;
  readonly delivery: string;
  readonly action: string | undefined;
  readonly payload: unknown;
  readonly status: number;
  readonly error?: string;
}

/** GitHub gives a receiver 10 s to answer. */
const TIMEOUT_MS = 10_000;

/** `sha256=<hex HMAC-SHA256>` of `body`, GitHub's `X-Hub-Signature-256`. */
export function signBody(secret: string, body: Uint8Array | string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * POSTs one delivery and reads the answer.
 *
 * @throws when the target cannot be reached or does not answer in time
 */
export async function deliver(
  target: WebhookTarget,
  secret: string,
  event: string,
  payload: unknown,
  options: SendOptions & { readonly delivery: string },
): Promise<{ status: number; body: string }> {
  const body = options.body ?? JSON.stringify(payload);
  const headers = new Headers({
    "Content-Type": "application/json",
    "User-Agent": "GitHub-Hookshot/double",
    "X-GitHub-Event": event,
    "X-GitHub-Delivery": options.delivery,
    "X-GitHub-Hook-ID": "1",
  });
  const signature = options.signature ?? "valid";
  const key = options.secret ?? secret;
  if (signature === "valid") {
    headers.set("X-Hub-Signature-256", signBody(key, body));
  } else if (signature === "wrong") {
    headers.set("X-Hub-Signature-256", signBody(`not-${key}`, body));
  } else if (signature !== "none") {
    headers.set("X-Hub-Signature-256", signBody(key, signature.over));
  }
  const client = "unixSocket" in target
    ? Deno.createHttpClient({
      proxy: { transport: "unix", path: target.unixSocket },
    })
    : undefined;
  const url = "unixSocket" in target
    ? `http://localhost${target.path ?? "/webhook"}`
    : target.url;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(url, {
      method: "POST",
      headers,
      body: typeof body === "string" ? body : new Uint8Array(body),
      signal: abort.signal,
      ...(client ? { client } : {}),
    });
    return { status: response.status, body: await response.text() };
  } finally {
    clearTimeout(timer);
    client?.close();
  }
}
