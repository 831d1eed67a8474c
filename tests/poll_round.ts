/**
 * One poll round of `forrest serve` (Daemon.poll()) against the GitHub
 * double, for an organization of N repositories of which some have a run
 * in progress: how many API requests it makes. Shared by the test that
 * pins the cost and the bench that prints it for 200 repositories. Also
 * the quick poll (Daemon.pollQueued()): what its rounds cost, and an hour
 * of them.
 */

import { withDaemon } from "./daemon.ts";
import { generateAppKey, GitHubDouble } from "./github/mod.ts";
import type { Daemon } from "../src/serve/mod.ts";
import { DEFAULT_QUEUED_POLLING_INTERVAL } from "../src/config/mod.ts";
import { PollPacer } from "../src/serve/poll_pacer.ts";

export interface PollRound {
  /** Requests of the round, by kind. */
  readonly requests: number;
  readonly byPath: Readonly<Record<string, number>>;
  readonly milliseconds: number;
}

const KEY = await generateAppKey();
/** Labels no machine has: the daemon tracks nothing, starts nothing. */
const LABELS = ["self-hosted", "gpu"];

/**
 * A double with an organization `acme` of `repositories` repositories,
 * `active` of them with one queued job each (their webhooks lost), and a
 * daemon serving the organization with the default intervals.
 */
async function withOrganization<T>(
  repositories: number,
  active: number,
  body: (double: GitHubDouble, daemon: Daemon) => Promise<T>,
): Promise<T> {
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
      labels: LABELS,
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
    return await body(double, daemon);
  });
}

/**
 * An organization `acme` with `repositories` repositories, `active` of
 * them with one queued job each; the first poll round after start (the
 * installation is found already).
 */
export function pollRound(
  repositories: number,
  active: number,
): Promise<PollRound> {
  return withOrganization(repositories, active, async (double, daemon) => {
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

/** What quick poll rounds cost: requests, and those that count (not 304). */
export interface QuickCost {
  readonly requests: number;
  readonly counted: number;
}

/**
 * The quick poll of the same organization after the full poll at start:
 * its first round (every listing read, ETags kept), and the next, with
 * nothing changed. The double's count of 304s, not the daemon's, says
 * what was counted.
 */
export function quickPollRounds(
  repositories: number,
  active: number,
): Promise<{ first: QuickCost; unchanged: QuickCost }> {
  return withOrganization(repositories, active, async (double, daemon) => {
    await daemon.poll();
    const round = async () => {
      const from = double.requests.length;
      await daemon.pollQueued();
      const { requests, counted } = double.requestCost(from);
      return { requests, counted };
    };
    return { first: await round(), unchanged: await round() };
  });
}

/** An hour of the quick poll, and how often it ran. */
export interface QuickHour extends QuickCost {
  readonly rounds: number;
  /** The longest time between two rounds' starts; seconds. */
  readonly longestGap: number;
}

/**
 * An hour of quick poll rounds (the default interval, as the daemon's
 * pacer spaces them; each round's own duration is taken as nothing),
 * after the full poll at start and the first quick round, which are not
 * counted. `busy`: a new job is queued every minute (its webhook lost),
 * taken a minute later by a runner elsewhere, and done 5 minutes after
 * that, in the repositories in turn: about 1 queued and 5 running jobs
 * at any time. Otherwise nothing changes.
 */
export function quickPollHour(
  repositories: number,
  busy: boolean,
): Promise<QuickHour> {
  return withOrganization(repositories, 0, async (double, daemon) => {
    await daemon.poll();
    await daemon.pollQueued();
    const pacer = new PollPacer();
    const events: { at: number; run: () => Promise<void> }[] = [];
    if (busy) {
      for (let minute = 0; minute < 60; minute++) {
        const at = minute * 60_000;
        events.push({
          at,
          run: async () => {
            const job = await double.queueJob({
              owner: "acme",
              repo: `repo${minute % repositories}`,
              labels: LABELS,
              webhook: false,
            });
            events.push({
              at: at + 60_000,
              run: () => double.startJobElsewhere(job.id, { webhook: false }),
            }, {
              at: at + 6 * 60_000,
              run: () => double.finishJobElsewhere(job.id, { webhook: false }),
            });
          },
        });
      }
    }
    let requests = 0;
    let counted = 0;
    let rounds = 0;
    let longestGap = 0;
    for (let now = 0; now < 3600_000;) {
      for (;;) {
        events.sort((a, b) => a.at - b.at);
        if (events[0] === undefined || events[0].at > now) break;
        await events.shift()!.run();
      }
      const from = double.requests.length;
      await daemon.pollQueued();
      const cost = double.requestCost(from);
      requests += cost.requests;
      counted += cost.counted;
      rounds++;
      pacer.roundEnded({
        startedAt: now,
        endedAt: now,
        requests: cost.requests,
        counted: cost.counted,
      });
      const gap = pacer.delay(DEFAULT_QUEUED_POLLING_INTERVAL, now);
      longestGap = Math.max(longestGap, gap / 1000);
      now += gap;
    }
    return { requests, counted, rounds, longestGap };
  });
}

// plugin-throttling starts its rate-limit groups, with cleanup intervals
// that live as long as the process, on the process's first request: make
// it on import, outside any test, so the sanitizers see only the tests'.
await pollRound(1, 0);
