/**
 * The run disk's cache mode: a job writes 2 GiB (not zeros, which qemu
 * would turn into discards) and syncs, once through the host's page cache
 * (qemu's default) and once with O_DIRECT and guest flushes ignored (the
 * original's setting). Prints the medians of the job's time and of how much
 * the host's page cache grew during the run (the RAM the host spent caching
 * what the guest caches already). Runs alternate; $DISK_BENCH_RUNS per side
 * (3 by default). Dropping the host's caches between runs needs root;
 * without it the cache figures are noisier.
 */

import { runEphemeral } from "../src/exec/mod.ts";
import { resolveAccelerator } from "../src/vm/mod.ts";
import type { DiskCache } from "../src/vm/mod.ts";
import { testDebianImage } from "../tests/debian_image.ts";
import { benchExperiment, median } from "./experiment.ts";

const RUNS = Number(Deno.env.get("DISK_BENCH_RUNS") ?? 3);
const MiB = 1024 ** 2;

async function cachedBytes(): Promise<number> {
  const text = await Deno.readTextFile("/proc/meminfo");
  const kib = Number(/^Cached:\s+(\d+) kB/m.exec(text)?.[1] ?? 0);
  return kib * 1024;
}

async function dropCaches(): Promise<void> {
  if (Deno.uid() !== 0) return;
  await new Deno.Command("sync").output();
  await Deno.writeTextFile("/proc/sys/vm/drop_caches", "3\n");
}

interface Sample {
  readonly seconds: number;
  readonly cacheGrowth: number;
}

async function writeJob(
  image: string,
  baseDir: string,
  cache: DiskCache,
): Promise<Sample> {
  await dropCaches();
  const baseline = await cachedBytes();
  let peak = baseline;
  const sampler = setInterval(async () => {
    peak = Math.max(peak, await cachedBytes());
  }, 200);
  const started = performance.now();
  try {
    const result = await runEphemeral({
      baseDir,
      image,
      command: [
        "sh",
        "-c",
        "yes 0123456789abcdef | head -c 2147483648 >/home/runner/big && sync",
      ],
      cpus: 2,
      ram: 2 * 1024 ** 3,
      disk: undefined,
      timeout: 20 * 60_000,
      keep: false,
      accel: await resolveAccelerator("auto"),
      clone: "auto",
      network: { mode: "restricted", forwards: [] },
      diskCache: cache,
      output: () => {},
    });
    if (result.outcome !== "exited" || result.exitCode !== 0) {
      throw new Error(`the job failed (${result.outcome}): ${result.runDir}`);
    }
  } finally {
    clearInterval(sampler);
  }
  return {
    seconds: (performance.now() - started) / 1000,
    cacheGrowth: peak - baseline,
  };
}

benchExperiment(
  `run disk cache: a job writing 2 GiB, host page cache vs O_DIRECT, ${RUNS} runs each`,
  async () => {
    const image = await testDebianImage();
    const baseDir = await Deno.makeTempDir({ prefix: "forrest-disk-bench-" });
    const samples: Record<DiskCache, Sample[]> = { host: [], direct: [] };
    try {
      for (let i = 0; i < RUNS; i++) {
        for (const cache of ["host", "direct"] as const) {
          samples[cache].push(await writeJob(image, baseDir, cache));
        }
      }
    } finally {
      await Deno.remove(baseDir, { recursive: true });
    }
    for (const cache of ["host", "direct"] as const) {
      const runs = samples[cache];
      console.log(
        `${cache.padEnd(6)}: job ${
          median(runs.map((r) => r.seconds)).toFixed(1)
        } s median, host page cache +${
          (median(runs.map((r) => r.cacheGrowth)) / MiB).toFixed(0)
        } MiB median peak (runs: ${
          runs.map((r) =>
            `${r.seconds.toFixed(1)} s/+${(r.cacheGrowth / MiB).toFixed(0)} MiB`
          ).join(", ")
        })`,
      );
    }
  },
);
