/**
 * What the core's table tests share: a core of a TOML config with runner
 * names that count up, and decisions and machines as short strings.
 */

import { parseConfig } from "../config/mod.ts";
import { Core, type Decision, DEFAULT_CORE_OPTIONS } from "./core.ts";

/** A core of `toml`; runner names end in 0000000000000001, 2, … */
export function testCore(toml: string): Core {
  let n = 0;
  return new Core(parseConfig(toml, { file: "f.toml", cwd: "/etc" }), {
    ...DEFAULT_CORE_OPTIONS,
    randomSuffix: () => String(++n).padStart(16, "0"),
  });
}

/** `register small#1`, `start small#2 (warm)`, `kill small#1 surplus`. */
export function brief(decisions: readonly (Decision | undefined)[]): string[] {
  return decisions.flatMap((d) => {
    if (d === undefined || d.kind === "delete-runner") return [];
    const name = `${d.machine.triplet.machine}#${d.machine.id}`;
    if (d.kind === "kill") return [`kill ${name} ${d.reason}`];
    return [`${d.kind} ${name}${d.machine.assigned ? "" : " (warm)"}`];
  });
}

/** `small#1:waiting`, … */
export function states(core: Core): string[] {
  return core.machines().map((m) => `${m.triplet.machine}#${m.id}:${m.state}`);
}
