/**
 * Boot to job start for Forrest's Debian images by release: bookworm and
 * trixie as `forrest image build debian` makes them (both built, and
 * cached, by the tests' image helper), or the images named in $BOOT_IMAGES
 * (comma-separated paths, e.g. to compare kernels). Runs alternate;
 * $BOOT_BENCH_RUNS per image (5 by default); prints medians and each
 * image's ratio to the first. Time is from qemu's start to the job's first
 * output, as in boot_bench.ts.
 */

import { basename } from "node:path";
import { testDebianImage } from "../tests/debian_image.ts";
import { benchExperiment, bootToJob, median } from "./experiment.ts";

const RUNS = Number(Deno.env.get("BOOT_BENCH_RUNS") ?? 5);

benchExperiment(
  `boot to job start by image, ${RUNS} runs each, alternated`,
  async () => {
    const named = Deno.env.get("BOOT_IMAGES");
    const images = named
      ? named.split(",")
      : [await testDebianImage(), await testDebianImage([], "trixie")];
    const baseDir = await Deno.makeTempDir({ prefix: "forrest-boot-bench-" });
    const times = images.map(() => [] as number[]);
    try {
      for (let run = 0; run < RUNS; run++) {
        for (const [i, image] of images.entries()) {
          times[i]!.push(await bootToJob(image, baseDir));
        }
      }
    } finally {
      await Deno.remove(baseDir, { recursive: true });
    }
    const first = median(times[0]!);
    for (const [i, image] of images.entries()) {
      const m = median(times[i]!);
      console.log(
        `${basename(image)}: ${(m / 1000).toFixed(1)} s median (${
          times[i]!.map((t) => (t / 1000).toFixed(1)).join(", ")
        }), ${(m / first).toFixed(2)}× the first`,
      );
    }
  },
);
