/**
 * Benchmarks that are one long experiment printing its own figures (boot
 * times, webhook throughput, overhead), rather than a function timed by
 * deno bench.
 */

import { runEphemeral } from "../src/exec/mod.ts";
import { resolveAccelerator } from "../src/vm/mod.ts";

/**
 * Registers `run` as a bench that runs it once. deno bench may call a
 * bench more than once (and awaits only async functions); the experiment
 * runs on the first call, later calls return at once.
 */
export function benchExperiment(name: string, run: () => Promise<void>) {
  let experiment: Promise<void> | undefined;
  Deno.bench({
    name,
    n: 1,
    warmup: 0,
    async fn() {
      await (experiment ??= run());
    },
  });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? sorted[middle]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Milliseconds from qemu's start to the job's first output. */
export async function bootToJob(
  image: string,
  baseDir: string,
): Promise<number> {
  let started = 0;
  let firstOutput = 0;
  const result = await runEphemeral({
    baseDir,
    image,
    command: ["echo", "job started"],
    cpus: 2,
    ram: 2 * 1024 ** 3,
    disk: undefined,
    timeout: 10 * 60_000,
    keep: false,
    accel: await resolveAccelerator("auto"),
    clone: "auto",
    network: { mode: "restricted", forwards: [] },
    onStarted: () => started = performance.now(),
    output: () => {
      firstOutput ||= performance.now();
    },
  });
  if (result.outcome !== "exited" || result.exitCode !== 0 || !firstOutput) {
    throw new Error(`boot failed (${result.outcome}); logs: ${result.runDir}`);
  }
  return firstOutput - started;
}
