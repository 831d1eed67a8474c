/**
 * API requests of one poll round for an organization of N repositories
 * (5 of them with a queued job), and how many rounds an hour GitHub's
 * smallest installation rate limit (5,000 requests an hour) allows. Then
 * an hour of the quick poll (queued_polling_interval, conditional
 * requests) for 1, 10 and 100 repositories, with nothing changing and
 * with a new job a minute: its requests, and those that count against
 * the rate limit (all but 304s). The figures are in docs/jobs.md.
 */

import { pollRound, quickPollHour } from "../tests/poll_round.ts";

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

console.log(
  "\nQuick poll, one hour after start (the first round, which reads every " +
    "listing, not included):",
);
console.log(
  "repositories  jobs           rounds/h  every  requests/h  counted/h",
);
for (const repositories of [1, 10, 100]) {
  for (const busy of [false, true]) {
    const hour = await quickPollHour(repositories, busy);
    console.log(
      [
        String(repositories).padEnd(12),
        (busy ? "one a minute" : "none").padEnd(13),
        String(hour.rounds).padStart(8),
        `${Math.round(3600 / hour.rounds)} s`.padStart(5),
        String(hour.requests).padStart(10),
        String(hour.counted).padStart(9),
      ].join("  "),
    );
  }
}
