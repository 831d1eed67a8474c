/**
 * A VDE switch for the extra-NIC tests, with the test's own "lab" host on
 * it: vde_switch runs inside a network namespace the test makes and plugs
 * a tap device into the switch there, which holds 203.0.113.1/24 (a
 * documentation range, checked unused by netns.ts). Guests reach it only
 * through the switch; nothing leaves the machine.
 */

import { join } from "node:path";
import { ip } from "./netns.ts";

export const LAB_HOST_V4 = "203.0.113.1";
export const LAB_GUEST_V4 = "203.0.113.2";

export class VdeLab {
  /** The switch's control socket folder, for `network_interfaces`. */
  readonly socket: string;
  readonly namespace: string;
  readonly #tap: string;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;

  private constructor(
    socket: string,
    namespace: string,
    tap: string,
    child: Deno.ChildProcess,
  ) {
    this.socket = socket;
    this.namespace = namespace;
    this.#tap = tap;
    this.#child = child;
    // vde_switch reads its console from stdin and ends at EOF: keep it open.
    this.#stdin = child.stdin.getWriter();
  }

  static async start(dir: string): Promise<VdeLab> {
    const id = crypto.randomUUID().slice(0, 6);
    const namespace = `frv-${id}`;
    const tap = `frvtap${id}`;
    const socket = join(dir, "lab.vde");
    await ip("netns", "add", namespace);
    const child = new Deno.Command("ip", {
      args: ["netns", "exec", namespace, "vde_switch", "-s", socket, "-t", tap],
      stdin: "piped",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const lab = new VdeLab(socket, namespace, tap, child);
    try {
      for (let i = 0; !(await lab.#tapExists()); i++) {
        if (i > 100) throw new Error("vde_switch made no tap device in 10 s");
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await ip("-n", namespace, "addr", "add", `${LAB_HOST_V4}/24`, "dev", tap);
      await ip("-n", namespace, "link", "set", tap, "up");
    } catch (error) {
      await lab.stop();
      throw error;
    }
    return lab;
  }

  async #tapExists(): Promise<boolean> {
    return (await ip("-n", this.namespace, "-o", "link")).includes(this.#tap);
  }

  /** MAC addresses the lab host has heard from (its neighbour table). */
  async neighbours(): Promise<string[]> {
    const text = await ip("-n", this.namespace, "neigh", "show");
    return [...text.matchAll(/lladdr ([0-9a-f:]{17})/g)].map((m) => m[1]!);
  }

  async stop(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // ended already
    }
    await this.#child.status;
    await ip("netns", "del", this.namespace).catch(() => {});
  }
}
