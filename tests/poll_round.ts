/**
 * One poll round of `forrest serve` (Daemon.poll()) against the GitHub
 * double, for an organization of N repositories of which some have a run
 * in progress: how many API requests it makes. Shared by the test that
 * pins the cost and the bench that prints it for 200 repositories.
 */

import { withDaemon } from "./daemon.ts";
import { generateAppKey, GitHubDouble } from "./github/mod.ts";

export interface PollRound {
  /** Requests of the round, by kind. */
  readonly requests: number;
  readonly byPath: Readonly<Record<string, number>>;
  readonly milliseconds: number;
}

const KEY = await generateAppKey();

/**
 * An organization `acme` with `repositories` repositories, `active` of
 * them with one queued job each; the first poll round after start (the
 * installation is found already).
 */
export async function pollRound(
  repositories: number,
  active: number,
): Promise<PollRound> {
  await using double = await GitHubDouble.start({
    appId: 1,
    privateKeyPem: KEY,
    webhookSecret: "hush",
  });
  double.addOrg("acme");
  for (let i = 0; i < repositories; i++) double.addRepo("acme", `repo${i}`);
  for (let i = 0; i < active; i++) {
    await double.queueJob({
      owner: "acme",
      repo: `repo${i}`,
      labels: ["self-hosted", "gpu"],
      webhook: false,
    });
  }
  return await withDaemon({
    scopesToml: '[organizations.acme.machines.build]\nbase_image = "x.img"\n',
    apiUrl: double.url,
    appKey: KEY,
    webhookSecret: "hush",
  }, async (daemon, forge) => {
    // The installation and its token, looked up as at start.
    await forge.listRunners({ kind: "organization", org: "acme" });
    const before = double.requests.length;
    const started = performance.now();
    await daemon.poll();
    const milliseconds = performance.now() - started;
    const round = double.requests.slice(before);
    const byPath: Record<string, number> = {};
    for (const request of round) {
      const path = request.path.replace(/repo\d+/, "{repo}")
        .replace(/runs\/\d+/, "runs/{run_id}");
      const key = `${request.method} ${path}${
        request.query.status ? `?status=${request.query.status}` : ""
      }`;
      byPath[key] = (byPath[key] ?? 0) + 1;
    }
    return {
      requests: round.length,
      byPath,
      milliseconds,
    };
  });
}

// plugin-throttling starts its rate-limit groups, with cleanup intervals
// that live as long as the process, on the process's first request: make
// it on import, outside any test, so the sanitizers see only the tests'.
await pollRound(1, 0);
