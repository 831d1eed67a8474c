/**
 * API requests of one poll round for an organization of N repositories
 * (5 of them with a queued job), and how many rounds an hour GitHub's
 * smallest installation rate limit (5,000 requests an hour) allows.
 * The figures are in docs/jobs.md.
 */

import { pollRound } from "../tests/poll_round.ts";

for (const repositories of [10, 50, 200]) {
  const round = await pollRound(repositories, 5);
  const perHour = Math.floor(5000 / round.requests);
  console.log(
    `${repositories} repositories: ${round.requests} requests per round ` +
      `(${round.milliseconds.toFixed(0)} ms against the double); ` +
      `5,000/h allows ${perHour} rounds an hour, one every ${
        Math.ceil(3600 / perHour)
      } s`,
  );
}
