/**
 * When the next quick poll round may start. Rounds start every
 * `queued_polling_interval`, start to start, unless that would spend more
 * than GitHub allows us to: 304 answers cost nothing of the installation's
 * rate limit, but every other answer does, and every request counts
 * towards GitHub's secondary limit of requests a minute. Pure: the caller
 * says what each round cost and when.
 */

export interface PollLimits {
  /**
   * Answers that count against the rate limit (all but 304s) an hour, on
   * average; a round that costs more makes the next ones wait.
   */
  readonly countedPerHour: number;
  /** How many of them may be spent at once (the first round, a busy minute). */
  readonly burst: number;
  /** Requests a minute, 304s included. */
  readonly requestsPerMinute: number;
}

/**
 * A fifth of the smallest installation's 5,000 requests an hour, so that
 * the full poll (a third at most, at its default interval, docs/jobs.md)
 * and registering and deleting runners keep the rest; a third of GitHub's
 * secondary limit of 900 points (GET requests) a minute.
 */
export const QUICK_POLL_LIMITS: PollLimits = {
  countedPerHour: 1_000,
  burst: 250,
  requestsPerMinute: 300,
};

/** What one round cost, and when it ran (milliseconds since the epoch). */
export interface PollRound {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly requests: number;
  /** Answers that counted against the rate limit (not 304). */
  readonly counted: number;
}

/** The shortest wait between rounds, however late the last one ended. */
const MIN_GAP = 1_000;
const HOUR = 3600_000;
const MINUTE = 60_000;

export class PollPacer {
  readonly #limits: PollLimits;
  /** Counted requests that may still be spent now; negative when overspent. */
  #tokens: number;
  #tokensAt: number | undefined;
  #last: PollRound | undefined;

  constructor(limits: PollLimits = QUICK_POLL_LIMITS) {
    this.#limits = limits;
    this.#tokens = limits.burst;
  }

  /** A round ended: what it spent is taken from what may be spent. */
  roundEnded(round: PollRound): void {
    this.#tokens = this.#tokensNow(round.endedAt) - round.counted;
    this.#tokensAt = round.endedAt;
    this.#last = round;
  }

  /**
   * Milliseconds from `now` (when a round ended) until the next one, for
   * rounds every `interval` ms: later when the last round's requests, at
   * the allowed rate a minute, take longer than that, and while more
   * counted requests were spent than the budget has earned since.
   */
  delay(interval: number, now: number): number {
    const last = this.#last;
    if (last === undefined) return interval;
    const byRate = last.requests * MINUTE / this.#limits.requestsPerMinute;
    let next = last.startedAt + Math.max(interval, byRate);
    const tokens = this.#tokensNow(now);
    if (tokens < 0) {
      next = Math.max(next, now + -tokens * HOUR / this.#limits.countedPerHour);
    }
    return Math.max(MIN_GAP, Math.ceil(next - now));
  }

  /** What may be spent at `now`: the budget refills, up to the burst. */
  #tokensNow(now: number): number {
    if (this.#tokensAt === undefined) return this.#tokens;
    const earned = Math.max(0, now - this.#tokensAt) *
      this.#limits.countedPerHour / HOUR;
    return Math.min(this.#limits.burst, this.#tokens + earned);
  }
}
