/**
 * `forrest status`: asks the running daemon for `/status` over the first
 * configured listen address (a Unix socket when there is one) and prints
 * it as tables, or as JSON for scripts.
 */

import {
  formatListen,
  formatSize,
  type ListenAddress,
  loadConfig,
} from "../config/mod.ts";
import type { Status } from "../core/mod.ts";
import { DEFAULT_CONFIG } from "./host_settings.ts";
import type { Output } from "./output.ts";
import { formatTable } from "./table.ts";

export interface StatusFlags {
  readonly config?: string;
  readonly json?: boolean;
}

export async function statusCommand(
  flags: StatusFlags,
  context: { output: Output; env: (name: string) => string | undefined },
  now = new Date(),
): Promise<number> {
  const file = flags.config ?? context.env("FORREST_CONFIG") ?? DEFAULT_CONFIG;
  const config = await loadConfig(file);
  const address = config.server.listen.find((a) => a.kind === "unix") ??
    config.server.listen[0]!;
  let text: string;
  try {
    text = await fetchStatus(address);
  } catch (error) {
    context.output.err(
      `forrest: cannot reach forrest serve at ${formatListen(address)}: ${
        (error as Error).message
      } (is it running?)`,
    );
    return 1;
  }
  if (flags.json) {
    context.output.out(text.trimEnd());
    return 0;
  }
  for (const line of formatStatus(JSON.parse(text) as Status, now)) {
    context.output.out(line);
  }
  return 0;
}

async function fetchStatus(address: ListenAddress): Promise<string> {
  if (address.kind === "tcp") {
    const host = address.hostname.includes(":")
      ? `[${address.hostname}]`
      : address.hostname;
    const response = await fetch(`http://${host}:${address.port}/status`);
    return await checked(response);
  }
  const client = Deno.createHttpClient({
    proxy: { transport: "unix", path: address.path },
  });
  try {
    return await checked(await fetch("http://forrest/status", { client }));
  } finally {
    client.close();
  }
}

async function checked(response: Response): Promise<string> {
  const text = await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.trim()}`);
  return text;
}

/** The status as lines: budgets, then machines, then jobs. */
export function formatStatus(status: Status, now: Date): string[] {
  const { ram, cpus } = status.budget;
  const lines = [
    `RAM ${formatSize(ram.used)} of ${formatSize(ram.total)}, ` +
    `CPUs ${cpus.used}${cpus.total === null ? "" : ` of ${cpus.total}`}`,
    "",
  ];
  const age = (iso: string) => formatAge(now.getTime() - Date.parse(iso));
  if (status.machines.length === 0) lines.push("No machines.");
  else {
    lines.push(...formatTable(
      ["MACHINE", "RUNNER", "STATE", "FOR", "JOB", "NOTE"],
      status.machines.map((m) => [
        m.triplet,
        m.runner,
        m.state,
        age(m.since),
        m.job === null ? "" : String(m.job),
        m.note ?? "",
      ]),
    ));
  }
  lines.push("");
  if (status.jobs.length === 0) lines.push("No jobs.");
  else {
    lines.push(...formatTable(
      ["JOB", "MACHINE", "STATUS", "FOR", "RUNNER"],
      status.jobs.map((j) => [
        String(j.id),
        j.triplet,
        j.status,
        age(j.since),
        j.runner ?? "",
      ]),
    ));
  }
  // Older daemons' status has no scale sets.
  if ((status.scaleSets ?? []).length > 0) {
    lines.push(
      "",
      ...formatTable(
        ["SCALE SET", "MACHINE", "ASSIGNED", "RUNNING", "CAPACITY"],
        status.scaleSets.map((s) => [
          s.name,
          s.triplet,
          String(s.assigned),
          String(s.running),
          String(s.capacity),
        ]),
        { align: ["left", "left", "right", "right", "right"] },
      ),
    );
  }
  return lines;
}

function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}
