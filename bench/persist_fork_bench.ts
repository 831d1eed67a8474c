/**
 * Forking a machine image that runs have persisted again and again. Each
 * run forks the image (reflink, as Forrest does), rewrites 1% of the
 * image's blocks at random, 4 KiB each (what a job's scattered writes do),
 * and persists (the fork becomes the image). Twice, on a fresh loop-mounted
 * btrfs each: without compacting, and with defragmentImage() after every
 * persist. Prints the final image's extents and fork time (cold cache:
 * after `drop_caches`; warm: right after another fork), the runs' own fork
 * times, and what the rewrites cost; and the fork time of an image just at
 * DEFRAGMENT_THRESHOLD extents, the most a rewrite leaves alone. About 8
 * minutes on 2 cores, most of it the 50 rewrites, each a copy of the data.
 *
 * The image is 4 GiB with its first GiB written (a Debian image holds
 * ~800 MB), and the runs overwrite blocks of that data. With
 * $PERSIST_BENCH_SPREAD=image their writes land anywhere in the image
 * instead, most of them into its hole, as islands that the rewrite joins
 * by filling holes (the image then fills up, and each rewrite copies all of
 * it). $PERSIST_BENCH_RUNS (50), $PERSIST_BENCH_IMAGE_GIB (4) and
 * $PERSIST_BENCH_DATA_GIB (1) change the rest. Needs root (mount,
 * drop_caches) and ~3 times the image's size free in the temp folder.
 */

import { join } from "node:path";
import {
  countExtents,
  DEFRAGMENT_THRESHOLD,
  defragmentImage,
  DiskForker,
  persistFork,
} from "../src/images/mod.ts";
import { benchExperiment, median } from "./experiment.ts";
import { seededRandom } from "../tests/files.ts";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const BLOCK = 4096;
const RUNS = Number(Deno.env.get("PERSIST_BENCH_RUNS") ?? 50);
const IMAGE_SIZE = Number(Deno.env.get("PERSIST_BENCH_IMAGE_GIB") ?? 4) * GiB;
const DATA_SIZE = Number(Deno.env.get("PERSIST_BENCH_DATA_GIB") ?? 1) * GiB;
const SPREAD = Deno.env.get("PERSIST_BENCH_SPREAD") === "image"
  ? "image"
  : "data";
/** 1% of the image's 4 KiB blocks: 10,486 for 4 GiB. */
const WRITES = Math.round(IMAGE_SIZE / BLOCK / 100);
const COLD_FORKS = 3;
const WARM_FORKS = 5;

async function sh(program: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(program, {
    args,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${program} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

async function dropCaches(): Promise<void> {
  await sh("sync", []);
  await Deno.writeTextFile("/proc/sys/vm/drop_caches", "3\n");
}

/** A fresh btrfs of `size` bytes for `body`, unmounted and removed after. */
async function withLoopBtrfs<T>(
  size: number,
  body: (mount: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "forrest-persist-bench-" });
  const backing = join(dir, "btrfs.img");
  const mount = join(dir, "mnt");
  try {
    await Deno.mkdir(mount);
    await sh("truncate", ["-s", String(size), backing]);
    await sh("mkfs.btrfs", ["-q", backing]);
    await sh("mount", ["-o", "loop", backing, mount]);
    try {
      return await body(mount);
    } finally {
      await sh("umount", [mount]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The image: DATA_SIZE bytes written (no zero blocks), the rest a hole. */
async function makeImage(path: string): Promise<void> {
  const chunk = new Uint8Array(16 * MiB);
  const file = await Deno.open(path, { write: true, createNew: true });
  try {
    for (let at = 0; at < DATA_SIZE; at += chunk.length) {
      for (let block = 0; block < chunk.length / BLOCK; block++) {
        const n = (at + block * BLOCK) / BLOCK;
        chunk.fill((n % 251) + 1, block * BLOCK, (block + 1) * BLOCK);
      }
      await file.write(chunk);
    }
    await file.truncate(IMAGE_SIZE);
    await file.sync();
  } finally {
    file.close();
  }
}

/** A job's scattered writes: `writes` random 4 KiB blocks. */
async function scatterWrites(
  path: string,
  next: () => number,
  writes = WRITES,
): Promise<void> {
  const blocks = (SPREAD === "image" ? IMAGE_SIZE : DATA_SIZE) / BLOCK;
  const data = new Uint8Array(BLOCK);
  const file = await Deno.open(path, { write: true });
  try {
    for (let i = 0; i < writes; i++) {
      data.fill((i % 255) + 1);
      await file.seek(Math.floor(next() * blocks) * BLOCK, Deno.SeekMode.Start);
      await file.write(data);
    }
  } finally {
    file.close();
  }
}

async function timedFork(
  forker: DiskForker,
  image: string,
  dest: string,
): Promise<{ ms: number; path: string }> {
  const started = performance.now();
  const fork = await forker.fork(image, dest, { clone: "reflink" });
  return { ms: performance.now() - started, path: fork.path };
}

interface Series {
  readonly label: string;
  readonly extents: number;
  readonly coldMs: number[];
  readonly warmMs: number[];
  /** Each run's own fork, and the image's extents after its persist. */
  readonly runs: { readonly forkMs: number; readonly extents: number }[];
  readonly rewriteSeconds: number[];
  readonly seconds: number;
  readonly allocated: number;
  /** A fork of an image with about DEFRAGMENT_THRESHOLD extents. */
  readonly atThreshold:
    | { extents: number; coldMs: number[]; warmMs: number[] }
    | undefined;
}

/** Forks of `image`, COLD_FORKS after dropping caches, WARM_FORKS without. */
async function forkTimes(
  forker: DiskForker,
  image: string,
  mount: string,
): Promise<{ coldMs: number[]; warmMs: number[] }> {
  const coldMs: number[] = [];
  const warmMs: number[] = [];
  for (let i = 0; i < COLD_FORKS + WARM_FORKS; i++) {
    const cold = i < COLD_FORKS;
    if (cold) await dropCaches();
    const fork = await timedFork(forker, image, join(mount, `runs/m${i}`));
    (cold ? coldMs : warmMs).push(fork.ms);
    await Deno.remove(fork.path);
  }
  return { coldMs, warmMs };
}

async function series(compact: boolean): Promise<Series> {
  const started = performance.now();
  return await withLoopBtrfs(4 * IMAGE_SIZE, async (mount) => {
    const forker = new DiskForker();
    const image = join(mount, "machines/acme/app/build.img");
    await Deno.mkdir(join(mount, "machines/acme/app"), { recursive: true });
    await Deno.mkdir(join(mount, "runs"));
    await makeImage(image);
    const next = seededRandom(42);
    const runs: Series["runs"][number][] = [];
    const rewriteSeconds: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const fork = await timedFork(forker, image, join(mount, "runs/disk"));
      await scatterWrites(fork.path, next);
      await persistFork(
        { path: fork.path, format: "raw", method: "reflink" },
        image,
      );
      if (compact) {
        const result = await defragmentImage(image);
        if (result.outcome === "rewritten") {
          rewriteSeconds.push(result.seconds);
        } else if (result.outcome !== "compact") {
          throw new Error(
            `Rewrite after run ${run + 1}: ${result.outcome} ${
              result.error ?? ""
            }`,
          );
        }
      }
      runs.push({ forkMs: fork.ms, extents: await countExtents(image) });
      if ((run + 1) % 10 === 0) {
        console.log(
          `  ${compact ? "with" : "no"} rewrite: ${run + 1} runs, ${
            runs.at(-1)!.extents.toLocaleString("en")
          } extents, ${((performance.now() - started) / 1000).toFixed(0)} s`,
        );
      }
    }
    const { coldMs, warmMs } = await forkTimes(forker, image, mount);
    let atThreshold: Series["atThreshold"];
    if (compact) {
      // An image just at the threshold, as the last one a rewrite leaves
      // alone: each overwritten block splits an extent in two.
      const fork = await timedFork(forker, image, join(mount, "runs/t"));
      const few = seededRandom(7);
      await scatterWrites(fork.path, few, DEFRAGMENT_THRESHOLD / 2);
      await Deno.rename(fork.path, join(mount, "threshold.img"));
      const path = join(mount, "threshold.img");
      atThreshold = {
        extents: await countExtents(path),
        ...await forkTimes(forker, path, mount),
      };
    }
    return {
      label: compact ? "with rewrite (after)" : "no rewrite (before)",
      atThreshold,
      extents: await countExtents(image),
      coldMs,
      warmMs,
      runs,
      rewriteSeconds,
      seconds: (performance.now() - started) / 1000,
      allocated: ((await Deno.stat(image)).blocks ?? 0) * 512,
    };
  });
}

function ms(value: number): string {
  return value >= 1000
    ? `${(value / 1000).toFixed(2)} s`
    : `${value.toFixed(value < 10 ? 1 : 0)} ms`;
}

function printTable(results: Series[]): void {
  const rows = [
    [
      "",
      "extents",
      "fork cold (med/max)",
      "fork warm (med)",
      "runs' forks (med/max)",
      "rewrites (n, med)",
      "data",
      "series",
    ],
    ...results.map((s) => [
      s.label,
      s.extents.toLocaleString("en"),
      `${ms(median(s.coldMs))} / ${ms(Math.max(...s.coldMs))}`,
      ms(median(s.warmMs)),
      `${ms(median(s.runs.map((r) => r.forkMs)))} / ${
        ms(Math.max(...s.runs.map((r) => r.forkMs)))
      }`,
      s.rewriteSeconds.length
        ? `${s.rewriteSeconds.length}, ${median(s.rewriteSeconds).toFixed(1)} s`
        : "-",
      `${(s.allocated / GiB).toFixed(2)} GiB`,
      `${s.seconds.toFixed(0)} s`,
    ]),
  ];
  const threshold = results.find((s) => s.atThreshold)?.atThreshold;
  if (threshold) {
    rows.push([
      "at the threshold",
      threshold.extents.toLocaleString("en"),
      `${ms(median(threshold.coldMs))} / ${ms(Math.max(...threshold.coldMs))}`,
      ms(median(threshold.warmMs)),
      "-",
      "-",
      "-",
      "-",
    ]);
  }
  const widths = rows[0]!.map((_, i) =>
    Math.max(...rows.map((r) => r[i]!.length))
  );
  for (const row of rows) {
    console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  "));
  }
  const before = results.find((s) => s.rewriteSeconds.length === 0);
  if (before) {
    // How fork time grows with extents: what the threshold is chosen from.
    const picks = [1, 2, 5, 10, 20, 30, 40, 50, RUNS].filter((n, i, all) =>
      n <= RUNS && all.indexOf(n) === i
    );
    console.log(
      "without rewrite, after run n (the next run's fork, warm):\n" +
        picks.map((n) => {
          const after = before.runs[n - 1]!;
          const nextFork = before.runs[n]?.forkMs;
          return `  ${String(n).padStart(3)}: ${
            after.extents.toLocaleString("en").padStart(9)
          } extents${nextFork === undefined ? "" : `, fork ${ms(nextFork)}`}`;
        }).join("\n"),
    );
  }
}

if (Deno.uid() !== 0) {
  console.log(
    "persist_fork_bench: needs root to loop-mount a btrfs and drop caches; nothing measured",
  );
} else {
  benchExperiment(
    `fork a ${
      IMAGE_SIZE / GiB
    } GiB image persisted ${RUNS} times (${WRITES} random 4 KiB writes each), ` +
      `without and with compacting above ${DEFRAGMENT_THRESHOLD} extents`,
    async () => {
      const results = [await series(false), await series(true)];
      printTable(results);
    },
  );
}
