/**
 * Boot to job start: the image of `forrest image build debian` (kernel
 * booted directly, Forrest's units baked in, no cloud-init) against the same
 * root file system with cloud-init added and the baked-in job unit
 * disabled, so that the built-in setup template brings the job up through
 * cloud-init, as on a distribution cloud image. Same accelerator, same host,
 * runs alternated A/B; prints the medians and their ratio. Target: ≥ 3×.
 *
 * Time is taken from qemu's start to the first byte of the job's output.
 * Runs: $BOOT_BENCH_RUNS per side (5 by default). Several minutes under TCG.
 */

import { join } from "node:path";
import { runChecked } from "../src/host/mod.ts";
import { testDebianImage } from "../tests/debian_image.ts";
import { benchExperiment, bootToJob, median } from "./experiment.ts";

const RUNS = Number(Deno.env.get("BOOT_BENCH_RUNS") ?? 5);

benchExperiment(
  `boot to job start, built image vs cloud-init, ${RUNS} runs each, A/B alternated`,
  runExperiment,
);

async function runExperiment(): Promise<void> {
  const fast = await testDebianImage();
  const withCloudInit = await testDebianImage(["cloud-init"]);
  const work = await Deno.makeTempDir({ prefix: "forrest-boot-bench-" });
  try {
    // The same root with cloud-init, but the job left to cloud-init.
    const slow = join(work, "cloud-init.img");
    await runChecked("cp", ["--sparse=always", withCloudInit, slow]);
    await runChecked("debugfs", [
      "-w",
      "-R",
      "rm /etc/systemd/system/multi-user.target.wants/forrest-job.service",
      slow,
    ]);
    const times = { direct: [] as number[], cloudInit: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      times.direct.push(await bootToJob(fast, work));
      times.cloudInit.push(await bootToJob(slow, work));
    }
    const direct = median(times.direct);
    const cloudInit = median(times.cloudInit);
    const seconds = (values: number[]) =>
      values.map((ms) => (ms / 1000).toFixed(1)).join(", ");
    console.log(
      `built image, direct boot:  median ${(direct / 1000).toFixed(1)} s (${
        seconds(times.direct)
      })`,
    );
    console.log(
      `through cloud-init:        median ${(cloudInit / 1000).toFixed(1)} s (${
        seconds(times.cloudInit)
      })`,
    );
    console.log(
      `ratio: ${
        (cloudInit / direct).toFixed(2)
      }× faster to a running job (target ≥ 3×)`,
    );
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
