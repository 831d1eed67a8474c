/**
 * Forrest's own overhead on the way to a job: from a `workflow_job`
 * webhook accepted to qemu spawned, with the GitHub double on loopback, for
 * a reflink fork (base_dir on a loop-mounted btrfs, as root) and a qcow2
 * overlay (ext4). Split into the demand debounce (5 s by design, so that a
 * workflow's jobs arrive together), registering the JIT runner, and
 * forking + config disks + kernel + qemu. OVERHEAD_BENCH_RUNS runs each
 * (default 5); medians. Each VM is killed as soon as it is spawned.
 */

import { join } from "node:path";
import { runChecked } from "../src/host/mod.ts";
import { btrfsUnavailable, withBtrfs } from "../tests/btrfs.ts";
import { testDebianImage } from "../tests/debian_image.ts";
import {
  LABELS,
  OWNER,
  REPO,
  type Serving,
  withServe,
} from "../tests/serve.ts";
import { benchExperiment, median } from "./experiment.ts";

const RUNS = Number(Deno.env.get("OVERHEAD_BENCH_RUNS") ?? 5);

benchExperiment(
  `webhook accepted → qemu spawned, reflink and qcow2, ${RUNS} runs each`,
  run,
);

async function run(): Promise<void> {
  const image = await testDebianImage();
  const results: string[] = [];
  await withServe({ image }, async (s) => {
    results.push(summary("qcow2 overlay (ext4)", await measure(s)));
  });
  const why = btrfsUnavailable();
  if (why) results.push(`reflink: skipped (${why})`);
  else {
    await withBtrfs(async (mnt) => {
      // base_dir is the mount point itself: run directories must stay
      // short enough for their Unix sockets.
      await Deno.mkdir(join(mnt, "images"));
      const copy = join(mnt, "images", "debian.img");
      await runChecked("cp", ["--sparse=always", image, copy]);
      await withServe({ image: copy, baseDir: mnt }, async (s) => {
        results.push(summary("reflink (btrfs)", await measure(s)));
      });
    }, 8 * 1024 ** 3);
  }
  console.log(["overhead bench (medians, ms):", ...results].join("\n"));
}

interface Sample {
  readonly registered: number;
  readonly spawned: number;
}

/** RUNS jobs, one at a time: each is cancelled once its qemu runs. */
async function measure(s: Serving): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    const logStart = s.log().length;
    const accepted = Date.now();
    const job = await s.double.queueJob({
      owner: OWNER,
      repo: REPO,
      labels: LABELS,
    });
    const deadline = Date.now() + 120_000;
    while (!s.log().slice(logStart).includes(`Started "forrest-debian-`)) {
      if (Date.now() > deadline) throw new Error("qemu did not start");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const lines = s.log().slice(logStart);
    samples.push({
      registered: timeOf(lines, "Registered runner") - accepted,
      spawned: timeOf(lines, "Started ") - accepted,
    });
    await s.double.cancelJob(job.id);
    await s.waitForStatus((st) => st.machines.length === 0, 120_000, "killed");
  }
  return samples;
}

/** The timestamp of the first log line that includes `text`. */
function timeOf(log: string, text: string): number {
  const line = log.split("\n").find((l) => l.includes(text));
  if (!line) throw new Error(`no "${text}" in the log`);
  return Date.parse(line.slice(0, 23).replace(" ", "T") + "Z");
}

function summary(name: string, samples: Sample[]): string {
  const registered = median(samples.map((s) => s.registered));
  const spawned = median(samples.map((s) => s.spawned));
  return `  ${name}: total ${spawned}, of which debounce + registration ${registered}, ` +
    `fork + disks + kernel + qemu ${spawned - registered} ` +
    `(runs: ${samples.map((s) => s.spawned).join(", ")})`;
}
