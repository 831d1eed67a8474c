import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "./duration.ts";

Deno.test("parseDuration() reads s, m, h and d", () => {
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("15m"), 900_000);
  assert.equal(parseDuration("2h"), 7_200_000);
  assert.equal(parseDuration("1d"), 86_400_000);
});

Deno.test("parseDuration() computes fractions exactly", () => {
  assert.equal(parseDuration("1.5h"), 5_400_000);
  assert.equal(parseDuration("0.3m"), 18_000);
  assert.throws(
    () => parseDuration("0.0001s"),
    new RangeError(
      'Cannot parse duration "0.0001s": it is not a whole number of milliseconds',
    ),
  );
});

Deno.test("parseDuration() rejects missing, unknown and upper-case units", () => {
  assert.throws(
    () => parseDuration("15"),
    new SyntaxError(
      'Cannot parse duration "15": missing unit (use s, m, h or d)',
    ),
  );
  assert.throws(
    () => parseDuration("15M"),
    new SyntaxError(
      'Cannot parse duration "15M": unknown unit "M" (use s, m, h or d)',
    ),
  );
  assert.throws(
    () => parseDuration("100ms"),
    new SyntaxError(
      'Cannot parse duration "100ms": unknown unit "ms" (use s, m, h or d)',
    ),
  );
});

Deno.test("parseDuration() rejects negative and malformed durations", () => {
  assert.throws(
    () => parseDuration("-5m"),
    new RangeError('Cannot parse duration "-5m": it is negative'),
  );
  for (const text of ["", "m", "1h30m", "5 m", "1e3s"]) {
    assert.throws(() => parseDuration(text), SyntaxError, text);
  }
});

Deno.test("formatDuration() uses the largest exact unit", () => {
  assert.equal(formatDuration(900_000), "15m");
  assert.equal(formatDuration(5_400_000), "90m");
  assert.equal(formatDuration(86_400_000), "1d");
  assert.equal(formatDuration(1_500), "1.5s");
  for (const text of ["15m", "2h", "3d", "45s"]) {
    assert.equal(formatDuration(parseDuration(text)), text);
  }
});
