/**
 * Durations in the config and on the command line: a number and one of the
 * units s, m, h, d. Kept as strict as sizes, for the same reason.
 */

import { scaleDecimal } from "./_decimal.ts";

const UNITS_MS: Readonly<Record<string, bigint>> = {
  s: 1_000n,
  m: 60_000n,
  h: 3_600_000n,
  d: 86_400_000n,
};

const DURATION_RE = /^(\d+)(?:\.(\d+))?([A-Za-z]*)$/;

/**
 * Parses a duration such as `"15m"`, `"90s"`, `"1.5h"` or `"2d"` into
 * milliseconds.
 *
 * @throws {RangeError} negative, not a whole number of milliseconds, or too long
 * @throws {SyntaxError} anything that is not a number followed by a unit
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed.startsWith("-")) {
    throw new RangeError(`Cannot parse duration "${text}": it is negative`);
  }
  const match = DURATION_RE.exec(trimmed);
  if (!match) {
    throw new SyntaxError(
      `Cannot parse duration "${text}": expected a number and a unit, such as "15m"`,
    );
  }
  const [, whole = "", fraction = "", unit = ""] = match;
  if (unit === "") {
    throw new SyntaxError(
      `Cannot parse duration "${text}": missing unit (use s, m, h or d)`,
    );
  }
  const factor = UNITS_MS[unit];
  if (factor === undefined) {
    throw new SyntaxError(
      `Cannot parse duration "${text}": unknown unit "${unit}" (use s, m, h or d)`,
    );
  }
  const ms = scaleDecimal(whole, fraction, factor);
  if (ms === undefined) {
    throw new RangeError(
      `Cannot parse duration "${text}": it is not a whole number of milliseconds`,
    );
  }
  if (ms > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`Cannot parse duration "${text}": it is too long`);
  }
  return Number(ms);
}

/** Formats milliseconds with the largest unit that divides them exactly. */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m"] as const) {
    const factor = Number(UNITS_MS[unit]);
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms / 1_000}s`;
}
