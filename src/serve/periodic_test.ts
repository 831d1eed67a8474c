import assert from "node:assert/strict";
import { Periodic } from "./periodic.ts";

Deno.test("Periodic runs again after each run, never twice at once, and stops", async () => {
  let runs = 0;
  let release: () => void = () => {};
  const periodic = new Periodic(async () => {
    runs++;
    await new Promise<void>((resolve) => release = resolve);
  }, () => 10);
  const first = periodic.run();
  assert.equal(periodic.run(), first, "a run under way is shared");
  assert.equal(runs, 1);
  release();
  await first;
  while (runs < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  const stopping = periodic.stop();
  release(); // the second run ends; stop() waits for it
  await stopping;
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert.equal(runs, 2, "no run after stop()");
});

Deno.test("Periodic.later() runs first after one interval, then on as usual", async () => {
  let runs = 0;
  const periodic = new Periodic(() => {
    runs++;
    return Promise.resolve();
  }, () => 20);
  periodic.later();
  periodic.later(); // due already: no second timer
  assert.equal(runs, 0);
  while (runs < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  await periodic.stop();
  periodic.later(); // stopped: nothing
  await new Promise((resolve) => setTimeout(resolve, 40));
  assert.equal(runs, 2);
});
