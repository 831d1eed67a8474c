/** `forrest shell RUNNER`: the terminal on a running machine's root shell. */

import { join } from "node:path";
import { hostSettings } from "./host_settings.ts";
import { UsageError } from "./exit.ts";
import type { Output } from "./output.ts";
import { RunDir } from "../run/mod.ts";

/** Ctrl-], as telnet and virsh console use it. */
const DETACH = 0x1d;

export interface ShellFlags {
  readonly baseDir?: string;
  readonly config?: string;
}

/** The run directories named `runner` under `runs/*\/*\/*\/`. */
async function findRunDir(
  baseDir: string,
  runner: string,
): Promise<string | undefined> {
  const children = async (dir: string) =>
    (await Array.fromAsync(Deno.readDir(dir)).catch(() => [])).filter((e) =>
      e.isDirectory
    )
      .map((e) => join(dir, e.name));
  for (const owner of await children(join(baseDir, "runs"))) {
    for (const repo of await children(owner)) {
      for (const machine of await children(repo)) {
        const dir = join(machine, runner);
        if (await Deno.stat(dir).then((i) => i.isDirectory, () => false)) {
          return dir;
        }
      }
    }
  }
  return undefined;
}

export async function shellCommand(
  runner: string,
  flags: ShellFlags,
  context: { output: Output; env: (name: string) => string | undefined },
): Promise<number> {
  const host = await hostSettings({
    config: flags.config,
    baseDir: flags.baseDir,
    env: context.env,
  });
  const runDir = await findRunDir(host.baseDir, runner);
  if (!runDir) {
    throw new UsageError(
      `No machine "${runner}" (looked in ${join(host.baseDir, "runs")})`,
    );
  }
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({
      transport: "unix",
      path: RunDir.open(runDir).socket("shell"),
    });
  } catch {
    context.output.err(
      `forrest: machine "${runner}" is not running (its run directory is ${runDir})`,
    );
    return 1;
  }
  const raw = Deno.stdin.isTerminal();
  context.output.err(
    `Connected to the root shell of ${runner}; Ctrl-] detaches.`,
  );
  if (raw) Deno.stdin.setRaw(true);
  const stdin = Deno.stdin.readable.getReader();
  try {
    const fromGuest = conn.readable.pipeTo(Deno.stdout.writable, {
      preventClose: true,
    })
      .catch(() => {});
    const toGuest = (async () => {
      for (;;) {
        const { value, done } = await stdin.read();
        if (done) return;
        const detach = value.indexOf(DETACH);
        const data = detach >= 0 ? value.subarray(0, detach) : value;
        if (data.length) await conn.write(data).catch(() => {});
        if (detach >= 0) return;
      }
    })();
    await Promise.race([fromGuest, toGuest]);
  } finally {
    if (raw) Deno.stdin.setRaw(false);
    try {
      conn.close();
    } catch { /* closed by the guest */ }
    await stdin.cancel().catch(() => {});
  }
  context.output.err("\nDetached.");
  return 0;
}
