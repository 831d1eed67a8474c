import assert from "node:assert/strict";
import { EtagCache } from "./etag_cache.ts";

Deno.test("EtagCache keeps each URL's ETag and value", () => {
  const cache = new EtagCache<number[]>(10);
  assert.equal(cache.get("/runs"), undefined);
  cache.set("/runs", 'W/"a"', [1, 2]);
  assert.deepEqual(cache.get("/runs"), { etag: 'W/"a"', value: [1, 2] });
  cache.set("/runs", 'W/"b"', [3]);
  assert.deepEqual(cache.get("/runs"), { etag: 'W/"b"', value: [3] });
  assert.equal(cache.size, 1);
  cache.delete("/runs");
  assert.equal(cache.get("/runs"), undefined);
});

Deno.test("EtagCache forgets the least recently used URL when full", () => {
  const cache = new EtagCache<string>(2);
  cache.set("/a", "1", "a");
  cache.set("/b", "2", "b");
  cache.get("/a"); // /b is now the oldest
  cache.set("/c", "3", "c");
  assert.equal(cache.size, 2);
  assert.equal(cache.get("/b"), undefined);
  assert.equal(cache.get("/a")?.value, "a");
  assert.equal(cache.get("/c")?.value, "c");
});

Deno.test("EtagCache refuses a limit that is not a positive integer", () => {
  assert.throws(() => new EtagCache(0), RangeError);
  assert.throws(() => new EtagCache(1.5), /positive integer, found 1.5/);
});
