/**
 * Sizes in the config and on the command line: a number and a unit, in
 * powers of 1024. Parsing is strict on purpose: the original panicked on a bad
 * size, and a silently misread "4m" (minutes? megabytes?) is worse than an
 * error that says what to write instead.
 */

import { scaleDecimal } from "./_decimal.ts";

const UNITS: Readonly<Record<string, bigint>> = {
  B: 1n,
  K: 1n << 10n,
  M: 1n << 20n,
  G: 1n << 30n,
  T: 1n << 40n,
};

/** The IEC spellings mean the same as the single letters. */
const IEC_ALIASES: Readonly<Record<string, string>> = {
  KiB: "K",
  MiB: "M",
  GiB: "G",
  TiB: "T",
};

const SIZE_RE = /^(\d+)(?:\.(\d+))?([A-Za-z]*)$/;

/**
 * Parses a size such as `"4G"`, `"1.5G"`, `"512M"` or `"4GiB"` into bytes.
 *
 * @throws {RangeError} negative, fractional bytes, or beyond 2^53
 * @throws {SyntaxError} anything that is not a number followed by a unit
 */
export function parseSize(text: string): number {
  const trimmed = text.trim();
  if (trimmed.startsWith("-")) {
    throw new RangeError(`Cannot parse size "${text}": it is negative`);
  }
  const match = SIZE_RE.exec(trimmed);
  if (!match) {
    throw new SyntaxError(
      `Cannot parse size "${text}": expected a number and a unit, such as "4G"`,
    );
  }
  const [, whole = "", fraction = "", unitText = ""] = match;
  const unit = unitValue(text, unitText);
  const bytes = scaleDecimal(whole, fraction, unit);
  if (bytes === undefined) {
    throw new RangeError(
      `Cannot parse size "${text}": it is not a whole number of bytes`,
    );
  }
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`Cannot parse size "${text}": it is too large`);
  }
  return Number(bytes);
}

function unitValue(text: string, unitText: string): bigint {
  if (unitText === "") {
    throw new SyntaxError(
      `Cannot parse size "${text}": missing unit (use B, K, M, G or T)`,
    );
  }
  const unit = UNITS[IEC_ALIASES[unitText] ?? unitText];
  if (unit !== undefined) return unit;
  const upper = unitText.toUpperCase();
  if (UNITS[upper] !== undefined) {
    throw new SyntaxError(
      `Cannot parse size "${text}": unit "${unitText}" must be upper case: write "${
        text.trim().slice(0, -unitText.length)
      }${upper}"`,
    );
  }
  if (/^[KMGT]B$/i.test(unitText)) {
    const letter = unitText[0]!.toUpperCase();
    throw new SyntaxError(
      `Cannot parse size "${text}": unit "${unitText}" is ambiguous: write "${letter}" or "${letter}iB" (powers of 1024)`,
    );
  }
  throw new SyntaxError(
    `Cannot parse size "${text}": unknown unit "${unitText}" (use B, K, M, G or T)`,
  );
}

/**
 * Formats bytes with the largest unit that divides them exactly, so that
 * `formatSize(parseSize(s))` reads back as what a user would have written.
 */
export function formatSize(bytes: number): string {
  for (const unit of ["T", "G", "M", "K"] as const) {
    const value = Number(UNITS[unit]);
    if (bytes >= value && bytes % value === 0) return `${bytes / value}${unit}`;
  }
  return `${bytes}B`;
}
