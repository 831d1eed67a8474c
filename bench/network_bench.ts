/**
 * The guest network's cost: qemu's user network in the host's namespace
 * ("unsafe-host", the old default) against the same in a namespace of its
 * own behind pasta ("user", the default now). For each: `forrest exec`'s
 * wall time for a job, the guest's uptime when the job starts, and a bulk
 * download (curl of $NETWORK_BENCH_MIB MiB, 100 by default) from a server in
 * a test "internet" namespace (tests/netns.ts: nothing leaves the machine).
 * Runs alternated A/B, $NETWORK_BENCH_RUNS per side (3 by default); prints
 * medians and ratios. Needs root (network namespaces).
 */

import { execArgs, runForrest } from "../tests/cli.ts";
import { testDebianImage } from "../tests/debian_image.ts";
import { INTERNET_V4, TestNetwork, unavailable } from "../tests/netns.ts";
import { benchExperiment, median } from "./experiment.ts";

const RUNS = Number(Deno.env.get("NETWORK_BENCH_RUNS") ?? 3);
const MIB = Number(Deno.env.get("NETWORK_BENCH_MIB") ?? 100);

interface Sample {
  readonly wall: number;
  readonly uptime: number;
  readonly mibPerSecond: number;
}

async function sample(
  net: TestNetwork,
  image: string,
  mode: string,
  accel: string,
): Promise<Sample> {
  const base = await Deno.makeTempDir({ prefix: "forrest-net-bench-" });
  try {
    const started = performance.now();
    const result = await runForrest(
      execArgs({ image, baseDir: base, network: mode, accel }, [
        "--",
        "sh",
        "-c",
        `cut -d' ' -f1 /proc/uptime; curl -sS -o /dev/null -w '%{speed_download}\\n' http://${INTERNET_V4}:8080/bulk?mib=${MIB}`,
      ]),
      { prefix: net.hostPrefix },
    );
    const wall = performance.now() - started;
    const [uptime, speed] = result.stdout.trim().split("\n").map(Number);
    if (result.code !== 0 || !uptime || !speed) {
      throw new Error(`exec failed: ${result.stdout}${result.stderr}`);
    }
    return { wall, uptime: uptime * 1000, mibPerSecond: speed / 1024 ** 2 };
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

benchExperiment(
  `guest network, slirp in the host namespace vs namespace + pasta, ${RUNS} runs each`,
  async () => {
    const why = await unavailable();
    if (why) {
      console.log(`skipped: ${why}`);
      return;
    }
    const accel = Deno.env.get("NETWORK_BENCH_ACCEL") ?? "tcg";
    const image = await testDebianImage();
    const net = await TestNetwork.create();
    try {
      await net.serve("internet", [[INTERNET_V4, 8080, "internet"]]);
      const samples: Record<string, Sample[]> = { "unsafe-host": [], user: [] };
      for (let i = 0; i < RUNS; i++) {
        for (const mode of Object.keys(samples)) {
          samples[mode]!.push(await sample(net, image, mode, accel));
        }
      }
      const figures: Record<string, Sample> = {};
      for (const [mode, list] of Object.entries(samples)) {
        const figure = {
          wall: median(list.map((s) => s.wall)),
          uptime: median(list.map((s) => s.uptime)),
          mibPerSecond: median(list.map((s) => s.mibPerSecond)),
        };
        figures[mode] = figure;
        console.log(
          `${mode.padEnd(12)} exec wall ${
            (figure.wall / 1000).toFixed(1)
          } s, ` +
            `guest uptime at job ${(figure.uptime / 1000).toFixed(1)} s, ` +
            `download ${
              figure.mibPerSecond.toFixed(1)
            } MiB/s (medians, ${accel})`,
        );
      }
      const [old, now] = [figures["unsafe-host"]!, figures.user!];
      console.log(
        `ratios user/unsafe-host: wall ${(now.wall / old.wall).toFixed(2)}, ` +
          `uptime ${(now.uptime / old.uptime).toFixed(2)}, ` +
          `download ${(now.mibPerSecond / old.mibPerSecond).toFixed(2)}`,
      );
    } finally {
      await net.close();
    }
  },
);
