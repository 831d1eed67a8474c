import assert from "node:assert/strict";
import { PollPacer, QUICK_POLL_LIMITS } from "./poll_pacer.ts";

const T0 = 1_700_000_000_000;

Deno.test("PollPacer.delay() is the interval before any round", () => {
  assert.equal(new PollPacer().delay(30_000, T0), 30_000);
});

Deno.test("PollPacer.delay() starts rounds every interval, start to start", () => {
  const pacer = new PollPacer();
  pacer.roundEnded({
    startedAt: T0,
    endedAt: T0 + 400,
    requests: 20,
    counted: 0,
  });
  assert.equal(pacer.delay(30_000, T0 + 400), 29_600);
  // A round longer than the interval: the next starts after a short gap.
  pacer.roundEnded({
    startedAt: T0,
    endedAt: T0 + 45_000,
    requests: 20,
    counted: 0,
  });
  assert.equal(pacer.delay(30_000, T0 + 45_000), 1_000);
});

Deno.test("PollPacer.delay() keeps to the requests a minute, 304s included", () => {
  // 100 repositories: 200 listings a round, 300 a minute: every 40 s.
  const pacer = new PollPacer();
  pacer.roundEnded({
    startedAt: T0,
    endedAt: T0 + 10_000,
    requests: 200,
    counted: 0,
  });
  assert.equal(pacer.delay(30_000, T0 + 10_000), 30_000);
});

Deno.test("PollPacer.delay() waits while more counted requests were spent than earned", () => {
  const pacer = new PollPacer();
  // The first round of 150 repositories fills the ETag cache: 300 counted
  // requests, 50 more than the burst: 50 × 3.6 s to earn them back.
  pacer.roundEnded({
    startedAt: T0,
    endedAt: T0 + 20_000,
    requests: 300,
    counted: 300,
  });
  assert.equal(pacer.delay(30_000, T0 + 20_000), 180_000);
  // Then only 304s: back to the rate of requests a minute (300: 60 s).
  const next = T0 + 200_000;
  pacer.roundEnded({
    startedAt: next,
    endedAt: next + 20_000,
    requests: 300,
    counted: 0,
  });
  assert.equal(pacer.delay(30_000, next + 20_000), 40_000);
});

Deno.test("PollPacer keeps busy rounds to the budget an hour", () => {
  // Every round costs 10 counted requests (a busy repository whose runs
  // change all the time): at 30 s that would be 1,200 an hour.
  const pacer = new PollPacer();
  let now = T0;
  const rounds: { at: number; counted: number }[] = [];
  for (let i = 0; i < 2_000; i++) {
    pacer.roundEnded({
      startedAt: now,
      endedAt: now + 100,
      requests: 12,
      counted: 10,
    });
    rounds.push({ at: now, counted: 10 });
    now += 100 + pacer.delay(30_000, now + 100);
  }
  const { countedPerHour, burst } = QUICK_POLL_LIMITS;
  for (let start = T0; start + 3600_000 <= now; start += 600_000) {
    const spent = rounds.filter((r) => r.at >= start && r.at < start + 3600_000)
      .reduce((sum, r) => sum + r.counted, 0);
    assert.ok(spent <= countedPerHour + burst, `${spent} in an hour`);
  }
  const lastHour = rounds.filter((r) => r.at >= now - 3600_000);
  // Settled: 1,000 an hour, a round every 36 s.
  assert.ok(Math.abs(lastHour.length - 100) <= 1, `${lastHour.length}`);
});
