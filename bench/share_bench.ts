/**
 * Shared folders (9p, virtio transport, msize 512 KiB as Forrest's images
 * mount them): a job reads a 512 MiB host file through a read-only share
 * and writes 512 MiB into a writable one, against the same read and write
 * on the guest's own disk. Prints MB/s as the guest's dd measures them,
 * median of $SHARE_BENCH_RUNS runs (3 by default), and the ratio. The share
 * reads through the host's page cache (the file was just written), the run
 * disk with O_DIRECT where the host allows it: what jobs see in practice.
 * Under TCG the writes are bound by the guest making random data.
 */

import { join } from "node:path";
import { runEphemeral } from "../src/exec/mod.ts";
import { resolveAccelerator } from "../src/vm/mod.ts";
import { testDebianImage } from "../tests/debian_image.ts";
import { benchExperiment, median } from "./experiment.ts";

const RUNS = Number(Deno.env.get("SHARE_BENCH_RUNS") ?? 3);

// dd's last line: "536870912 bytes (537 MB, 512 MiB) copied, 2.1 s, 256 MB/s".
const JOB = `
set -e
rate() { tail -n 1 | sed -n 's/.*, \\([0-9.]*\\) \\([kMG]\\)B\\/s$/\\1 \\2/p'; }
drop() { sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null; }
drop; echo "share-read $(dd if=/mnt/ro/big of=/dev/null bs=1M 2>&1 | rate)"
rm -f /mnt/rw/out
echo "share-write $(dd if=/dev/urandom of=/mnt/rw/out bs=1M count=512 conv=fsync 2>&1 | rate)"
cp /mnt/ro/big /home/runner/big
drop; echo "disk-read $(dd if=/home/runner/big of=/dev/null bs=1M 2>&1 | rate)"
echo "disk-write $(dd if=/dev/urandom of=/home/runner/out bs=1M count=512 conv=fsync 2>&1 | rate)"
`;

function mbPerSecond(text: string): number {
  const [value, unit] = text.split(" ");
  const factor = unit === "G" ? 1000 : unit === "k" ? 0.001 : 1;
  return Number(value) * factor;
}

benchExperiment(
  `shared folders (9p) vs the guest's disk, 512 MiB, ${RUNS} runs`,
  async () => {
    const image = await testDebianImage();
    const dir = await Deno.makeTempDir({ prefix: "forrest-share-bench-" });
    const figures = new Map<string, number[]>();
    try {
      const ro = join(dir, "ro");
      const rw = join(dir, "rw");
      await Deno.mkdir(ro);
      await Deno.mkdir(rw);
      await Deno.chmod(rw, 0o777);
      const random = new Uint8Array(1024 ** 2);
      const file = await Deno.open(join(ro, "big"), {
        write: true,
        create: true,
      });
      for (let i = 0; i < 512; i++) {
        crypto.getRandomValues(random.subarray(0, 65536));
        random.copyWithin(65536, 0, 1024 ** 2 - 65536);
        await file.write(random);
      }
      file.close();
      for (let run = 0; run < RUNS; run++) {
        let output = "";
        const result = await runEphemeral({
          baseDir: join(dir, "base"),
          image,
          command: ["sh", "-c", JOB],
          cpus: 2,
          ram: 2 * 1024 ** 3,
          disk: 6 * 1024 ** 3,
          timeout: 20 * 60_000,
          keep: false,
          accel: await resolveAccelerator("auto"),
          clone: "auto",
          network: { mode: "restricted", forwards: [] },
          devices: {
            shared: [
              { path: ro, tag: "ro", writable: false },
              { path: rw, tag: "rw", writable: true },
            ],
          },
          output: (chunk) => {
            output += new TextDecoder().decode(chunk);
          },
        });
        if (result.outcome !== "exited" || result.exitCode !== 0) {
          throw new Error(`the job failed (${result.outcome}): ${output}`);
        }
        for (const line of output.trim().split("\n")) {
          const [name, ...rest] = line.split(" ");
          if (!name) continue;
          figures.set(name, [
            ...(figures.get(name) ?? []),
            mbPerSecond(rest.join(" ")),
          ]);
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    const m = (name: string) => median(figures.get(name) ?? [NaN]);
    for (const kind of ["read", "write"]) {
      const share = m(`share-${kind}`);
      const disk = m(`disk-${kind}`);
      console.log(
        `${kind.padEnd(5)}: share ${share.toFixed(0)} MB/s, disk ${
          disk.toFixed(0)
        } MB/s (share/disk ${(share / disk).toFixed(2)}×), medians of ${RUNS}`,
      );
    }
  },
);
