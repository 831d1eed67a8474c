/**
 * How fast a job starts (product.md §13): from a `workflow_job` webhook to
 * the runner started in the guest (the stand-in's first call to the GitHub
 * double), for a cold machine (registered while it boots) and a warm one
 * (`min_idle = 1`: booted, given its runner and JOBDATA when the job
 * comes). START_BENCH_RUNS runs each (default 10), one job at a time; p50
 * and p90, and the median of each stage. Stages come from the daemon's log
 * (ms timestamps) and the double's clock, both the host's wall clock.
 */

import { testDebianImage } from "../tests/debian_image.ts";
import {
  LABELS,
  OWNER,
  REPO,
  type Serving,
  withServe,
} from "../tests/serve.ts";
import { benchExperiment, median } from "./experiment.ts";

const RUNS = Number(Deno.env.get("START_BENCH_RUNS") ?? 10);
const TIMEOUT = 300_000;

benchExperiment(
  `webhook → runner started in the guest, cold and warm, ${RUNS} runs each`,
  run,
);

interface Sample {
  /** Milliseconds from the webhook, each stage as it ended. */
  readonly registered: number;
  readonly qemu: number | undefined;
  /** The guest opened its ready port (booted; cold runs only). */
  readonly booted: number | undefined;
  readonly jobdata: number | undefined;
  readonly online: number;
}

async function run(): Promise<void> {
  const image = await testDebianImage();
  let cold: Sample[] = [];
  let warm: Sample[] = [];
  await withServe({ image }, async (s) => {
    cold = await measure(s, false);
  });
  await withServe({ image, machineToml: "min_idle = 1" }, async (s) => {
    warm = await measure(s, true);
  });
  console.log(table(cold, warm));
}

async function measure(s: Serving, warm: boolean): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    if (warm) {
      await s.waitForStatus(
        (st) => st.machines.some((m) => m.state === "warm"),
        TIMEOUT,
        "a warm machine",
      );
    }
    const logStart = s.log().length;
    const webhook = Date.now();
    const job = await s.double.queueJob({
      owner: OWNER,
      repo: REPO,
      labels: LABELS,
      script: "true",
    });
    await s.double.waitFor(
      () => s.double.job(job.id)?.status === "completed",
      TIMEOUT,
      "the job completed",
    );
    const runner = s.double.job(job.id)!.runnerName!;
    const onlineAt = s.double.onlineAt(runner);
    if (onlineAt === undefined) throw new Error(`${runner} never came online`);
    const lines = s.log().slice(logStart).split("\n").filter((line) =>
      line.includes(runner)
    );
    samples.push({
      registered: timeOf(lines, "Registered runner")! - webhook,
      qemu: warm ? undefined : timeOf(lines, "Started ")! - webhook,
      booted: warm ? undefined : optional(timeOf(lines, "booted in"), webhook),
      jobdata: optional(timeOf(lines, "its JOBDATA"), webhook),
      online: onlineAt - webhook,
    });
    await s.waitForStatus(
      (st) => st.machines.every((m) => m.runner !== runner),
      TIMEOUT,
      "the machine gone",
    );
  }
  return samples;
}

function optional(at: number | undefined, from: number): number | undefined {
  return at === undefined ? undefined : at - from;
}

/** The timestamp of the first log line that includes `text`. */
function timeOf(lines: readonly string[], text: string): number | undefined {
  const line = lines.find((l) => l.includes(text));
  return line === undefined
    ? undefined
    : Date.parse(line.slice(0, 23).replace(" ", "T") + "Z");
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
}

function table(cold: Sample[], warm: Sample[]): string {
  const ms = (n: number | undefined) =>
    n === undefined ? "—" : `${Math.round(n)} ms`;
  const stage = (samples: Sample[], pick: (s: Sample) => number | undefined) =>
    ms(
      samples.some((s) => pick(s) === undefined)
        ? undefined
        : median(samples.map((s) => pick(s)!)),
    );
  const rows = [
    ["", "cold", "warm"],
    [
      "webhook → runner started, p50",
      ms(median(cold.map((s) => s.online))),
      ms(median(warm.map((s) => s.online))),
    ],
    [
      "webhook → runner started, p90",
      ms(percentile(cold.map((s) => s.online), 0.9)),
      ms(percentile(warm.map((s) => s.online), 0.9)),
    ],
    [
      "  runner registered (median)",
      stage(cold, (s) => s.registered),
      stage(warm, (s) => s.registered),
    ],
    ["  qemu started (median)", stage(cold, (s) => s.qemu), "no boot"],
    ["  guest booted (median)", stage(cold, (s) => s.booted), "no boot"],
    [
      "  JOBDATA hot-plugged (median)",
      stage(cold, (s) => s.jobdata),
      stage(warm, (s) => s.jobdata),
    ],
    [
      "  booted and JOBDATA in → runner started",
      stage(cold, afterJobData),
      stage(warm, afterJobData),
    ],
    [
      "  Forrest's own share (median)",
      stage(cold, ownShare),
      stage(warm, ownShare),
    ],
  ];
  const widths = rows[0]!.map((_, i) =>
    Math.max(...rows.map((r) => r[i]!.length))
  );
  return [
    `start bench (${cold.length} cold, ${warm.length} warm runs):`,
    ...rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ")),
  ].join("\n");
}

/** The guest's own way from JOBDATA (and its boot) to the runner. */
function afterJobData(s: Sample): number | undefined {
  if (s.jobdata === undefined) return undefined;
  return s.online - Math.max(s.jobdata, s.booted ?? 0);
}

/**
 * What Forrest itself adds: to qemu's start (fork, disks, kernel, qemu;
 * registration runs beside it), and from the later of the registration's
 * answer and the guest's boot to the JOBDATA hot-plug. Guest boot and the
 * forge's answers are not Forrest's.
 */
function ownShare(s: Sample): number | undefined {
  const toQemu = s.qemu ?? 0;
  const toJobData = s.jobdata === undefined ? 0 : Math.max(
    0,
    s.jobdata - Math.max(s.registered, s.qemu ?? 0, s.booted ?? 0),
  );
  return toQemu + toJobData;
}
