import assert from "node:assert/strict";
import { formatSize, parseSize } from "./size.ts";

const GiB = 1024 ** 3;

Deno.test("parseSize() reads each unit as a power of 1024", () => {
  assert.equal(parseSize("512B"), 512);
  assert.equal(parseSize("4K"), 4096);
  assert.equal(parseSize("3M"), 3 * 1024 ** 2);
  assert.equal(parseSize("4G"), 4 * GiB);
  assert.equal(parseSize("2T"), 2 * 1024 ** 4);
});

Deno.test("parseSize() accepts IEC spellings", () => {
  assert.equal(parseSize("4GiB"), 4 * GiB);
  assert.equal(parseSize("16MiB"), 16 * 1024 ** 2);
});

Deno.test("parseSize() accepts fractions that make whole bytes", () => {
  assert.equal(parseSize("1.5G"), 1.5 * GiB);
  assert.equal(parseSize("0.5K"), 512);
  assert.throws(
    () => parseSize("0.3B"),
    new RangeError(
      'Cannot parse size "0.3B": it is not a whole number of bytes',
    ),
  );
});

Deno.test("parseSize() accepts zero; callers decide whether zero is allowed", () => {
  assert.equal(parseSize("0G"), 0);
});

Deno.test("parseSize() rejects negative sizes", () => {
  assert.throws(
    () => parseSize("-1G"),
    new RangeError('Cannot parse size "-1G": it is negative'),
  );
});

Deno.test("parseSize() rejects lower-case units with the spelling to use", () => {
  assert.throws(
    () => parseSize("4g"),
    new SyntaxError(
      'Cannot parse size "4g": unit "g" must be upper case: write "4G"',
    ),
  );
});

Deno.test("parseSize() rejects SI-looking units as ambiguous", () => {
  assert.throws(
    () => parseSize("4GB"),
    new SyntaxError(
      'Cannot parse size "4GB": unit "GB" is ambiguous: write "G" or "GiB" (powers of 1024)',
    ),
  );
});

Deno.test("parseSize() rejects missing and unknown units", () => {
  assert.throws(
    () => parseSize("4096"),
    new SyntaxError(
      'Cannot parse size "4096": missing unit (use B, K, M, G or T)',
    ),
  );
  assert.throws(
    () => parseSize("4Q"),
    new SyntaxError(
      'Cannot parse size "4Q": unknown unit "Q" (use B, K, M, G or T)',
    ),
  );
});

Deno.test("parseSize() rejects text that is not a number and a unit", () => {
  for (const text of ["", "G", "4 G", "1e3G", "four", "4.G", ".5G"]) {
    assert.throws(() => parseSize(text), SyntaxError, text);
  }
});

Deno.test("parseSize() rejects sizes beyond 2^53 bytes", () => {
  assert.throws(
    () => parseSize("9000000T"),
    new RangeError('Cannot parse size "9000000T": it is too large'),
  );
});

Deno.test("formatSize() uses the largest exact unit", () => {
  assert.equal(formatSize(4 * GiB), "4G");
  assert.equal(formatSize(1.5 * GiB), "1536M");
  assert.equal(formatSize(1000), "1000B");
  assert.equal(formatSize(0), "0B");
  for (const text of ["4G", "512M", "3T", "7K", "12B"]) {
    assert.equal(formatSize(parseSize(text)), text);
  }
});
