/**
 * Webhook throughput of a running `forrest serve` on loopback TCP: signed
 * `workflow_job` deliveries (recorded payloads, each with its own delivery
 * id) from 16 concurrent senders for 30 s (WEBHOOK_BENCH_SECONDS), with
 * deliveries per second, p50 and p99 latency, and the daemon's RSS: every
 * minute under load (a 10-minute run, WEBHOOK_BENCH_SECONDS=600, shows
 * whether it levels off), and 30 s after the load stops.
 */

import { createHmac } from "node:crypto";
import { workflowJobPayload } from "../tests/github/mod.ts";
import {
  OWNER,
  REPO,
  WEBHOOK_SECRET as SECRET,
  withServe,
} from "../tests/serve.ts";
import { benchExperiment } from "./experiment.ts";

const SECONDS = Number(Deno.env.get("WEBHOOK_BENCH_SECONDS") ?? 30);
const SENDERS = 16;

benchExperiment(
  `signed workflow_job deliveries, ${SENDERS} senders, ${SECONDS} s`,
  run,
);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function run(): Promise<void> {
  const port = freePort();
  await withServe({
    image: "/nonexistent/debian.img",
    tcp: `127.0.0.1:${port}`,
    janitorInterval: "10m",
    // V8 flags for the daemon only, to compare heap settings.
    ...(Deno.env.get("SERVE_V8_FLAGS")
      ? { env: { DENO_V8_FLAGS: Deno.env.get("SERVE_V8_FLAGS")! } }
      : {}),
  }, async (s) => {
    // Jobs for hosted runners: verified, parsed and matched, not ours.
    const bodies = Array.from({ length: 256 }, (_, i) => {
      const body = JSON.stringify(workflowJobPayload("queued", {
        id: 10_000 + i,
        run_id: 5,
        status: "queued",
        labels: ["ubuntu-latest"],
        runner_name: null,
      }, {
        id: 1,
        owner: OWNER,
        ownerId: 2,
        name: REPO,
        installationId: 3,
      }));
      const signature = `sha256=${
        createHmac("sha256", SECRET).update(body).digest("hex")
      }`;
      return { body, signature };
    });
    const rssBefore = rssOf(s.pid);
    const latencies: number[] = [];
    let failures = 0;
    const end = performance.now() + SECONDS * 1000;
    const sender = async (k: number) => {
      for (let i = k; performance.now() < end; i += SENDERS) {
        const { body, signature } = bodies[i % bodies.length]!;
        const started = performance.now();
        const response = await fetch(`http://127.0.0.1:${port}/webhook`, {
          method: "POST",
          body,
          headers: {
            "Content-Type": "application/json",
            "X-GitHub-Event": "workflow_job",
            "X-GitHub-Delivery": crypto.randomUUID(),
            "X-Hub-Signature-256": signature,
          },
        });
        await response.body?.cancel();
        latencies.push(performance.now() - started);
        if (response.status !== 202) failures++;
      }
    };
    const t0 = performance.now();
    const samples: string[] = [];
    const sampler = setInterval(() => {
      const minutes = Math.round((performance.now() - t0) / 60_000);
      samples.push(`${minutes} min ${rssOf(s.pid)} MiB`);
    }, 60_000);
    await Promise.all(Array.from({ length: SENDERS }, (_, k) => sender(k)));
    clearInterval(sampler);
    const elapsed = (performance.now() - t0) / 1000;
    const rssAfter = rssOf(s.pid);
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    latencies.sort((a, b) => a - b);
    const at = (q: number) =>
      latencies[
        Math.min(latencies.length - 1, Math.floor(q * latencies.length))
      ]!;
    console.log(
      [
        `webhook bench: ${latencies.length} deliveries in ${
          elapsed.toFixed(1)
        } s`,
        `  ${
          Math.round(latencies.length / elapsed)
        } deliveries/s, ${failures} not 202`,
        `  latency p50 ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms`,
        `  forrest serve RSS ${rssBefore} MiB before, ${rssAfter} MiB after, ` +
        `${rssOf(s.pid)} MiB 30 s later`,
        ...(samples.length ? [`  RSS under load: ${samples.join(", ")}`] : []),
        `  body ${bodies[0]!.body.length} bytes (a recorded payload)`,
      ].join("\n"),
    );
  });
}

function rssOf(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  return Math.round(kib / 1024);
}
