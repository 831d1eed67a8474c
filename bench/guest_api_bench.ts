/**
 * Artifact uploads through the guest API: a 1 GiB upload, streamed with
 * curl over loopback as a guest's would arrive (chunked, no length, as the
 * upload-artifact action sends), three times. curl reads a file: from a
 * pipe (`-T -`) curl itself manages only ~10 MiB/s. Prints the median throughput beside a plain write of the same bytes
 * (dd with conv=fsync: the disk's own speed), and how much the daemon's
 * resident memory grows during the upload: streaming must keep that flat,
 * whatever the upload's size.
 */

import { join } from "node:path";
import { GuestApi, newRunToken } from "../src/guest_api/mod.ts";
import { benchExperiment, median } from "./experiment.ts";

const MiB = 1024 * 1024;
const SIZE = 1024 * MiB;
const ROUNDS = 3;

async function sh(command: string): Promise<void> {
  const out = await new Deno.Command("sh", {
    args: ["-c", command],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`${command}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

benchExperiment("guest API: 1 GiB artifact uploads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "forrest-upload-bench-" });
  const api = new GuestApi();
  try {
    const port = await api.listen();
    const token = newRunToken();
    api.runs.add(token, "forrest-bench-x", [{
      name: "artifact",
      path: join(dir, "store"),
      url: "https://ci.example.org/",
      quota: ROUNDS * SIZE,
      token: undefined,
    }]);
    const source = join(dir, "source.bin");
    await sh(`head -c ${SIZE} /dev/zero > ${source}`);
    const upload: number[] = [];
    const plain: number[] = [];
    let peakGrowth = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const before = Deno.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, Deno.memoryUsage().rss);
      }, 20);
      let started = performance.now();
      await sh(
        `curl -sf -T ${source} -o /dev/null ` +
          `-H "Transfer-Encoding: chunked" ` +
          `-H "Authorization: Bearer ${token.reveal()}" ` +
          `http://127.0.0.1:${port}/artifact/artifact/round-${round}.bin`,
      );
      upload.push(performance.now() - started);
      clearInterval(sampler);
      peakGrowth = Math.max(peakGrowth, peak - before);
      started = performance.now();
      await sh(
        `dd if=${source} of=${dir}/plain-${round}.bin ` +
          `bs=64K conv=fsync status=none`,
      );
      plain.push(performance.now() - started);
      await Deno.remove(join(dir, "store", `round-${round}.bin`));
      await Deno.remove(join(dir, `plain-${round}.bin`));
    }
    const rate = (ms: number) => (SIZE / MiB) / (ms / 1000);
    console.log(
      `guest API upload of 1 GiB: median ${median(upload).toFixed(0)} ms ` +
        `(${rate(median(upload)).toFixed(0)} MiB/s); plain write with fsync: ` +
        `${median(plain).toFixed(0)} ms (${
          rate(median(plain)).toFixed(0)
        } MiB/s); ratio ${(median(upload) / median(plain)).toFixed(2)}`,
    );
    console.log(
      `resident memory growth during an upload: at most ${
        (peakGrowth / MiB).toFixed(1)
      } MiB for ${SIZE / MiB} MiB uploaded`,
    );
  } finally {
    await api.close();
    await Deno.remove(dir, { recursive: true });
  }
});
