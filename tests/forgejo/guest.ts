/**
 * What the runner stand-in (standin/forgejo-runner) calls in place of the
 * real runner's ConnectRPC protocol at `<url>/api/actions`, under
 * `/_guest/forgejo/`. Like the real runner it names itself with
 * `x-runner-uuid` and proves itself with its token, sent as
 * `x-runner-token-b64` (base64 of the token file's exact bytes) so that a
 * file with a trailing newline is refused as Forgejo refuses it.
 *
 * - `POST declare`, body `label,label`: the runner is seen, with these labels;
 * - `POST fetch[?handle=H]`: the job's script (200) when Forgejo would hand
 *   this runner that attempt (ForgejoState.take), else 204;
 * - `POST finish?exit=N`: the running task ends; an ephemeral runner goes;
 * - `GET runner/v{V}/forgejo-runner-{V}-linux-{arch}`: the stand-in itself,
 *   to download as from code.forgejo.org.
 */

import type { ForgejoState, Runner } from "./state.ts";
import { STANDIN_RUNNER_VERSION } from "./standin.ts";

const PREFIX = "/_guest/forgejo/";

function text(status: number, body = ""): Response {
  return new Response(status === 204 ? null : body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** The runner whose uuid and token the request carries, if they match. */
function runnerOf(state: ForgejoState, headers: Headers): Runner | undefined {
  const runner = state.runnerByUuid(headers.get("x-runner-uuid") ?? "");
  if (!runner) return undefined;
  let token: string;
  try {
    token = atob(headers.get("x-runner-token-b64") ?? "");
  } catch {
    return undefined;
  }
  // Byte for byte: the runner reads its token file untrimmed.
  return token === runner.token ? runner : undefined;
}

export function handleGuest(
  state: ForgejoState,
  request: { url: URL; method: string; headers: Headers; body: string },
  standin: () => Promise<Uint8Array<ArrayBuffer>>,
  now: number,
): Promise<Response> | Response {
  const path = request.url.pathname.slice(PREFIX.length);
  if (path.startsWith("runner/")) {
    const v = STANDIN_RUNNER_VERSION.replaceAll(".", "\\.");
    const download = new RegExp(
      `^runner/v${v}/forgejo-runner-${v}-linux-(amd64|arm64)$`,
    );
    if (request.method !== "GET" || !download.test(path)) {
      return text(404, "no such runner release\n");
    }
    return standin().then((bytes) =>
      new Response(bytes, {
        headers: { "content-type": "application/octet-stream" },
      })
    );
  }
  if (request.method !== "POST") return text(405, "POST only\n");
  const runner = runnerOf(state, request.headers);
  if (!runner) return text(401, "unregistered runner\n");
  runner.lastSeen = now;
  switch (path) {
    case "declare": {
      runner.labels = request.body.split(",").map((l) => l.trim()).filter(
        (l) => l !== "",
      );
      runner.version = request.headers.get("x-runner-version") ?? "";
      return text(200, "declared\n");
    }
    case "fetch": {
      const handle = request.url.searchParams.get("handle") ?? undefined;
      const job = state.take(runner, handle || undefined);
      return job ? text(200, job.script) : text(204);
    }
    case "finish": {
      const exit = Number(request.url.searchParams.get("exit") ?? "NaN");
      if (!Number.isInteger(exit)) return text(400, "exit=N needed\n");
      const job = state.finish(runner, exit);
      return job ? text(200, "finished\n") : text(409, "no task running\n");
    }
  }
  return text(404, "no such guest endpoint\n");
}
