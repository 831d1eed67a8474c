/**
 * Telling systemd how Forrest is doing (`Type=notify`), through
 * `systemd-notify`, so that the compiled binary needs no datagram socket
 * support of its own. The unit needs `NotifyAccess=all`, because the
 * message comes from that child process. Does nothing outside systemd.
 */

import { getLogger } from "@logtape/logtape";

export interface NotifyState {
  /** READY=1: the API listens and the first poll has run. */
  readonly ready?: boolean;
  /** STOPPING=1: shutting down; running jobs may still be finishing. */
  readonly stopping?: boolean;
  readonly status: string;
}

export async function notifySystemd(
  state: NotifyState,
  env: (name: string) => string | undefined = (name) => Deno.env.get(name),
): Promise<void> {
  if (!env("NOTIFY_SOCKET")) return;
  const args = [
    ...(state.ready ? ["--ready"] : []),
    // As an assignment: --stopping is newer than Debian 12's systemd 252.
    ...(state.stopping ? ["STOPPING=1"] : []),
    // No barrier: it would wait for systemd to acknowledge, which a busy
    // manager may take long to do; the message itself is enough.
    "--no-block",
    `--status=${state.status}`,
  ];
  try {
    const out = await new Deno.Command("systemd-notify", {
      args,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(new TextDecoder().decode(out.stderr).trim());
    }
  } catch (error) {
    getLogger(["forrest", "systemd"]).warn(
      "Cannot notify systemd ({args}): {error}",
      { args: args.join(" "), error: (error as Error).message },
    );
  }
}
