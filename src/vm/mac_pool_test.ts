import assert from "node:assert/strict";
import { MacPool } from "./mac_pool.ts";

Deno.test("MacPool hands out locally administered unicast addresses", () => {
  const pool = new MacPool();
  for (let i = 0; i < 200; i++) {
    const mac = pool.take();
    assert.match(mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const first = parseInt(mac.slice(0, 2), 16);
    assert.equal(first & 0x02, 0x02, `${mac} is not locally administered`);
    assert.equal(first & 0x01, 0, `${mac} is multicast`);
  }
});

Deno.test("MacPool reuses addresses given back, last first, never one in use", () => {
  const pool = new MacPool();
  const a = pool.take();
  const b = pool.take();
  assert.notEqual(a, b);
  pool.give(a);
  pool.give(b);
  assert.equal(pool.take(), b);
  assert.equal(pool.take(), a);
  // Given back twice, or never taken: handed out at most once.
  pool.give(a);
  pool.give(a);
  pool.give("02:00:00:00:00:01");
  assert.equal(pool.take(), a);
  assert.notEqual(pool.take(), a);
});

Deno.test("MacPool draws again when chance repeats an address in use", () => {
  const draws = [[0xff, 1, 2, 3, 4, 5], [0xff, 1, 2, 3, 4, 5], [
    0,
    9,
    9,
    9,
    9,
    9,
  ]];
  const pool = new MacPool((bytes) => bytes.set(draws.shift()!));
  assert.equal(pool.take(), "fe:01:02:03:04:05");
  assert.equal(pool.take(), "02:09:09:09:09:09");
});
