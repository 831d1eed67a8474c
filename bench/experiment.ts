/**
 * Benchmarks that are one long experiment printing its own figures (boot
 * times, webhook throughput, overhead), rather than a function timed by
 * deno bench.
 */

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
