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
  /** Follow the daemon's /events: the status again at every change. */
  readonly watch?: boolean;
}

export interface StatusContext {
  readonly output: Output;
  readonly env: (name: string) => string | undefined;
  /** Whether stdout is a terminal: --watch then redraws in place. */
  readonly isTerminal?: () => boolean;
}

export async function statusCommand(
  flags: StatusFlags,
  context: StatusContext,
  now = new Date(),
): Promise<number> {
  const file = flags.config ?? context.env("FORREST_CONFIG") ?? DEFAULT_CONFIG;
  const config = await loadConfig(file);
  const address = config.server.listen.find((a) => a.kind === "unix") ??
    config.server.listen[0]!;
  if (flags.watch) return await watchStatus(address, flags, context);
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
  const { url, client } = apiUrl(address, "/status");
  try {
    return await checked(
      await fetch(url, client === undefined ? {} : { client }),
    );
  } finally {
    client?.close();
  }
}

/** Where a path of the API is, and the client for a Unix socket. */
function apiUrl(
  address: ListenAddress,
  path: string,
): { url: string; client: Deno.HttpClient | undefined } {
  if (address.kind === "tcp") {
    const host = address.hostname.includes(":")
      ? `[${address.hostname}]`
      : address.hostname;
    return { url: `http://${host}:${address.port}${path}`, client: undefined };
  }
  return {
    url: `http://forrest${path}`,
    client: Deno.createHttpClient({
      proxy: { transport: "unix", path: address.path },
    }),
  };
}

/** Clears a terminal and puts the cursor top left. */
const CLEAR = "\x1b[H\x1b[2J";

/**
 * `--watch`: the daemon's status at every change, from `/events`. On a
 * terminal each one replaces the last; otherwise (a log, a pipe) each is
 * printed after the last with its time, and `--json` prints one JSON
 * status a line. Ends when the daemon stops (1) or on Ctrl-C.
 */
async function watchStatus(
  address: ListenAddress,
  flags: StatusFlags,
  context: StatusContext,
): Promise<number> {
  const { output } = context;
  const { url, client } = apiUrl(address, "/events");
  const terminal = !flags.json && (context.isTerminal?.() ?? false);
  try {
    const response = await fetch(url, client === undefined ? {} : { client });
    if (!response.ok || response.body === null) {
      await checked(response);
      throw new Error("no event stream");
    }
    const events = response.body.pipeThrough(new TextDecoderStream())
      .pipeThrough(sseEvents());
    for await (const event of events) {
      if (event.event !== "status") continue;
      if (flags.json) {
        output.out(event.data);
        continue;
      }
      const now = new Date();
      const lines = formatStatus(JSON.parse(event.data) as Status, now);
      const time = now.toTimeString().slice(0, 8);
      if (terminal) {
        output.out(`${CLEAR}${lines[0]}`);
        for (const line of lines.slice(1)) output.out(line);
        output.out("");
        output.out(`${time}, redrawn at every change; Ctrl-C to stop`);
      } else {
        output.out(`--- ${time}`);
        for (const line of lines) output.out(line);
      }
    }
  } catch (error) {
    output.err(
      `forrest: cannot follow forrest serve at ${formatListen(address)}: ${
        (error as Error).message
      } (is it running?)`,
    );
    return 1;
  } finally {
    client?.close();
  }
  output.err("forrest: forrest serve ended the stream (it stopped)");
  return 1;
}

export interface ServerSentEvent {
  readonly event: string;
  readonly data: string;
}

/**
 * Text chunks in, events out (the WHATWG event stream format): `event:`
 * and `data:` fields (several data lines joined by newlines), comments
 * and other fields skipped, an event ended by an empty line.
 */
export function sseEvents(): TransformStream<string, ServerSentEvent> {
  let buffer = "";
  let event = "message";
  let data: string[] = [];
  const line = (
    text: string,
    controller: TransformStreamDefaultController<ServerSentEvent>,
  ) => {
    if (text === "") {
      if (data.length > 0) controller.enqueue({ event, data: data.join("\n") });
      event = "message";
      data = [];
      return;
    }
    if (text.startsWith(":")) return;
    const colon = text.indexOf(":");
    const field = colon < 0 ? text : text.slice(0, colon);
    const value = colon < 0 ? "" : text.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  };
  return new TransformStream({
    transform(chunk, controller) {
      buffer += chunk;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop()!;
      for (const text of lines) line(text, controller);
    },
  });
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
