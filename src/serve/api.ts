/**
 * The HTTP API (Hono): `POST /webhook`, `GET /status`, `GET /events` (the
 * status again at every change, as server-sent events), `GET /metrics`.
 * The webhook body is limited while it is read, not after, so a client
 * cannot make Forrest buffer more than the limit; its signature is checked
 * over the raw bytes before anything is parsed (in the forge).
 */

import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { Daemon } from "./daemon.ts";
import { PAGE, renderView, SCRIPT, STYLE } from "./dashboard/mod.ts";

/** GitHub caps payloads at 25 MB, but workflow_job ones are a few KiB. */
export const WEBHOOK_LIMIT = 4 * 1024 * 1024;
/** How often /events looks for a change of the status (ms). */
const EVENTS_CHECK = 250;
/** A comment this often keeps proxies from closing a quiet stream (ms). */
const EVENTS_HEARTBEAT = 15_000;

export function apiApp(daemon: Daemon): Hono {
  const app = new Hono();
  app.post(
    "/webhook",
    bodyLimit({
      maxSize: WEBHOOK_LIMIT,
      onError: (c) => {
        daemon.metrics.webhook("too_large");
        return c.text(`body larger than ${WEBHOOK_LIMIT} bytes\n`, 413);
      },
    }),
    async (c) => {
      const body = new Uint8Array(await c.req.arrayBuffer());
      const answer = await daemon.webhook(c.req.raw.headers, body);
      if (answer.status === 204) return c.body(null, 204);
      return c.text(answer.body, answer.status);
    },
  );
  app.get("/status", (c) => c.json(daemon.status()));
  app.get(
    "/events",
    (c) => changes(c, daemon, "status", () => JSON.stringify(daemon.status())),
  );
  // The dashboard: a page, its script and style, its view at every change,
  // and a live machine's boot log. Nothing comes from another host, and
  // no inline script runs (the view is escaped HTML; the CSP is a second
  // wall).
  app.get("/", (c) => page(c, PAGE, "text/html; charset=utf-8"));
  app.get("/dashboard.js", (c) => page(c, SCRIPT, "text/javascript"));
  app.get("/dashboard.css", (c) => page(c, STYLE, "text/css"));
  app.get(
    "/dashboard/events",
    (c) =>
      changes(c, daemon, "view", async () =>
        renderView({
          status: daemon.status(),
          images: await daemon.images(),
          baseDir: daemon.core.config.host.baseDir,
          now: new Date(),
        })),
  );
  app.get("/machines/:runner/log", async (c) => {
    const tail = await daemon.logTail(c.req.param("runner"));
    if (tail === undefined) return c.text("no such live machine\n", 404);
    return c.text(tail, 200, { "Cache-Control": "no-store" });
  });
  app.get("/metrics", (c) =>
    c.text(daemon.metricsText(), 200, {
      "Content-Type": "text/plain; version=0.0.4; charset=utf-8",
    }));
  app.notFound((c) => c.text("not found\n", 404));
  app.onError((error, c) => {
    // Never a stack trace to the client; the log has what went wrong.
    daemon.logError(error);
    return c.text("internal error\n", 500);
  });
  return app;
}

const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; " +
  "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; " +
  "base-uri 'none'; object-src 'none'";

function page(c: Context, body: string, type: string): Response {
  return c.body(body, 200, {
    "Content-Type": type,
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
  });
}

/**
 * Server-sent events: `render()` at once, then again whenever what it
 * renders changed (looked at 4 times a second); a comment now and then
 * keeps proxies from closing a quiet stream. Ends when the client goes
 * or Forrest has stopped.
 */
function changes(
  c: Context,
  daemon: Daemon,
  event: string,
  render: () => string | Promise<string>,
): Response {
  return streamSSE(c, async (stream) => {
    const stopped = daemon.stopped;
    let last = "";
    let quiet = 0;
    while (!stream.aborted && !stream.closed && !stopped.aborted) {
      const text = await render();
      if (text !== last) {
        last = text;
        quiet = 0;
        await stream.writeSSE({ event, data: text });
      } else if ((quiet += EVENTS_CHECK) >= EVENTS_HEARTBEAT) {
        quiet = 0;
        await stream.write(": keep-alive\n\n");
      }
      await stream.sleep(EVENTS_CHECK);
    }
  });
}
