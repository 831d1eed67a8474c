/**
 * A small world of network namespaces for the guest network tests, so that
 * no packet leaves the machine:
 *
 *   "host" namespace (Forrest runs here)          "internet" namespace
 *   lo: the host's loopback servers   veth pair   a server at
 *   203.0.113.1/24, 2001:db8::1/64  <=========>   203.0.113.2, 2001:db8::2
 *   default routes via the internet
 *
 * Documentation-range addresses (RFC 5737, RFC 3849), after checking that
 * the machine does not use them. Needs root; `unavailable()` says why not.
 */

import { fileURLToPath } from "node:url";

export const INTERNET_V4 = "203.0.113.2";
export const INTERNET_V6 = "2001:db8::2";
export const HOST_V4 = "203.0.113.1";
export const HOST_V6 = "2001:db8::1";

const SERVER = fileURLToPath(
  new URL("./fixtures/net_server.ts", import.meta.url),
);

/** Runs `ip` and returns what it printed; throws with its stderr. */
export async function ip(...args: string[]): Promise<string> {
  const out = await new Deno.Command("ip", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  if (!out.success) {
    throw new Error(`ip ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
  }
  return decoder.decode(out.stdout);
}

/** Why the namespaces cannot be made here, or undefined when they can. */
export async function unavailable(): Promise<string | undefined> {
  if (Deno.uid() !== 0) return "network namespaces need root";
  try {
    const addresses = await ip("-o", "addr");
    if (/203\.0\.113\.|2001:db8:/i.test(addresses)) {
      return "this machine uses 203.0.113.0/24 or 2001:db8::/32 itself";
    }
  } catch (error) {
    return `ip does not work: ${(error as Error).message}`;
  }
  return undefined;
}

/** One server: address, port, and the body it answers with. */
export type ServerSpec = readonly [string, number, string];

export class TestNetwork {
  readonly host: string;
  readonly internet: string;
  readonly #servers: Deno.ChildProcess[] = [];

  private constructor(id: string) {
    this.host = `frh-${id}`;
    this.internet = `fri-${id}`;
  }

  static async create(): Promise<TestNetwork> {
    const id = crypto.randomUUID().slice(0, 6);
    const net = new TestNetwork(id);
    const [hostEnd, netEnd] = [`frh${id}`, `fri${id}`];
    try {
      await ip("netns", "add", net.host);
      await ip("netns", "add", net.internet);
      await ip(
        "-n",
        net.host,
        "link",
        "add",
        hostEnd,
        "type",
        "veth",
        "peer",
        "name",
        netEnd,
        "netns",
        net.internet,
      );
      for (
        const [ns, dev, v4, v6] of [
          [net.host, hostEnd, HOST_V4, HOST_V6],
          [net.internet, netEnd, INTERNET_V4, INTERNET_V6],
        ]
      ) {
        await ip("-n", ns!, "link", "set", "lo", "up");
        await ip("-n", ns!, "addr", "add", `${v4}/24`, "dev", dev!);
        await ip(
          "-n",
          ns!,
          "-6",
          "addr",
          "add",
          `${v6}/64`,
          "dev",
          dev!,
          "nodad",
        );
        await ip("-n", ns!, "link", "set", dev!, "up");
      }
      // pasta copies the interface with the default route.
      await ip("-n", net.host, "route", "add", "default", "via", INTERNET_V4);
      await ip(
        "-n",
        net.host,
        "-6",
        "route",
        "add",
        "default",
        "via",
        INTERNET_V6,
      );
    } catch (error) {
      await net.close();
      throw error;
    }
    return net;
  }

  /** Starts servers in one of the namespaces; they stop with close(). */
  async serve(
    where: "host" | "internet",
    servers: readonly ServerSpec[],
  ): Promise<void> {
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        where === "host" ? this.host : this.internet,
        Deno.execPath(),
        "run",
        "--quiet",
        "--allow-net",
        SERVER,
        ...servers.flatMap(([address, port, body]) => [
          address,
          String(port),
          body,
        ]),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#servers.push(child);
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    while (!text.includes("ready")) {
      const { value, done } = await reader.read();
      if (done) throw new Error("test servers did not start");
      text += value;
    }
    await reader.cancel();
  }

  /** `ip netns exec` prefix for running a command in the host namespace. */
  get hostPrefix(): string[] {
    return ["ip", "netns", "exec", this.host];
  }

  async close(): Promise<void> {
    for (const server of this.#servers) {
      try {
        server.kill("SIGTERM");
      } catch {
        // gone already
      }
      await server.status;
    }
    // Deleting a namespace removes its end of the veth pair, and the pair.
    for (const ns of [this.host, this.internet]) {
      await ip("netns", "del", ns).catch(() => {});
    }
  }
}
