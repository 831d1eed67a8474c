/**
 * A webhook receiver for the double's own tests: records every delivery and
 * checks its signature with `@octokit/webhooks-methods`, independently of
 * the double's signing code.
 */

import { verify } from "@octokit/webhooks-methods";

export interface Received {
  readonly path: string;
  readonly event: string | null;
  readonly delivery: string | null;
  readonly userAgent: string | null;
  readonly signature: string | null;
  /** Whether the signature is a valid HMAC of the body with the secret. */
  readonly signed: boolean;
  readonly body: string;
}

export interface Receiver extends AsyncDisposable {
  /** Its URL, on TCP; undefined on a unix socket. */
  readonly url: string | undefined;
  readonly received: Received[];
  close(): Promise<void>;
}

/** Listens on 127.0.0.1 (or `unixSocket`) and answers every delivery 200. */
export function startReceiver(
  secret: string,
  unixSocket?: string,
): Receiver {
  const received: Received[] = [];
  const handler = async (request: Request) => {
    const body = await request.text();
    const signature = request.headers.get("x-hub-signature-256");
    received.push({
      path: new URL(request.url).pathname,
      event: request.headers.get("x-github-event"),
      delivery: request.headers.get("x-github-delivery"),
      userAgent: request.headers.get("user-agent"),
      signature,
      signed: signature !== null && await verify(secret, body, signature),
      body,
    });
    return new Response("thanks");
  };
  const server = unixSocket === undefined
    ? Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      handler,
    )
    : Deno.serve(
      { path: unixSocket, transport: "unix", onListen: () => {} },
      handler,
    );
  const addr = server.addr;
  const close = () => server.shutdown();
  return {
    url: "port" in addr ? `http://127.0.0.1:${addr.port}/webhook` : undefined,
    received,
    close,
    [Symbol.asyncDispose]: close,
  };
}
