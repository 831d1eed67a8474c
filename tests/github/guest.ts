/**
 * The endpoints the runner stand-in (standin-template/job-config/job.sh)
 * calls from inside a test VM, in place of the actions runner's own
 * protocol. Each request's body is the runner's encoded JIT config, which
 * names the runner and proves it with the secret inside.
 */

import type { GitHubState, RunnerState } from "./state.ts";

function text(status: number, body = ""): Response {
  return new Response(status === 204 ? null : body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** The runner an encoded JIT config belongs to, if it still exists. */
export function runnerOfConfig(
  state: GitHubState,
  encoded: string,
): RunnerState | undefined {
  try {
    const config = JSON.parse(atob(encoded.trim()));
    const runner = state.runner(Number(config.runner_id));
    return runner && runner.secret === config.secret ? runner : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `POST /_guest/online`: the runner connected. `POST /_guest/take`: the
 * runner's job's script (200), or 204 while there is none for it.
 * `POST /_guest/done?exit=N`: the job ended; the runner is gone.
 */
export function handleGuest(
  state: GitHubState,
  url: URL,
  method: string,
  body: string,
): Response {
  if (method !== "POST") return text(405, "POST only\n");
  const runner = runnerOfConfig(state, body);
  if (!runner) return text(404, "unknown runner\n");
  switch (url.pathname) {
    case "/_guest/online":
      runner.status = "online";
      if (!state.onlineAt.has(runner.name)) {
        state.onlineAt.set(runner.name, Date.now());
      }
      return text(200, "online\n");
    case "/_guest/take": {
      const job = state.take(runner);
      return job ? text(200, job.script) : text(204);
    }
    case "/_guest/done": {
      const exit = Number(url.searchParams.get("exit") ?? "NaN");
      if (!Number.isInteger(exit)) return text(400, "exit=N needed\n");
      state.finish(runner, exit);
      return text(200, "done\n");
    }
  }
  return text(404, "no such guest endpoint\n");
}
