import assert from "node:assert/strict";
import { join } from "node:path";
import { LogGuard } from "./log_guard.ts";

async function withDir(body: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "forrest-guard-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("LogGuard stops a VM whose log grows past the limit, once", async () => {
  await withDir(async (dir) => {
    const log = join(dir, "log.txt");
    const output = join(dir, "output.txt");
    await Deno.writeTextFile(log, "boot\n");
    let stops = 0;
    const told: string[] = [];
    let resolveStopped: () => void;
    const stopped = new Promise<void>((resolve) => resolveStopped = resolve);
    const guard = new LogGuard(
      {
        stop: () => {
          stops++;
          resolveStopped();
          return Promise.resolve();
        },
      },
      [log, output],
      {
        limit: 1000,
        interval: 10,
        onExceeded: (file, size) => told.push(`${file} ${size}`),
      },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(stops, 0, "a small log (and a missing file) is fine");
    await Deno.writeTextFile(output, "x".repeat(1001));
    await stopped;
    await new Promise((resolve) => setTimeout(resolve, 50));
    await guard.stop();
    assert.equal(stops, 1);
    assert.deepEqual(told, [`${output} 1001`]);
  });
});

Deno.test("LogGuard.stop() ends the watch", async () => {
  await withDir(async (dir) => {
    const log = join(dir, "log.txt");
    let stops = 0;
    const guard = new LogGuard(
      {
        stop: () => Promise.resolve(stops++),
      },
      [log],
      { limit: 10, interval: 10, onExceeded: () => {} },
    );
    await guard.stop();
    await Deno.writeTextFile(log, "x".repeat(100));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(stops, 0);
  });
});
