/**
 * What a guest can reach, all in one place.
 *
 * qemu's user network (slirp) maps its host address (10.0.2.2 by default)
 * to the loopback of the network namespace qemu runs in. In
 * the host's namespace that is the host's loopback: every local database,
 * cache or API. So qemu runs in a network namespace of its own (a user
 * namespace makes that possible without root), whose loopback is empty but
 * for the forwards, and which reaches the outside world through pasta (from
 * Debian's passt package), which carries the namespace's connections out as
 * its own sockets on the host.
 *
 * What a guest may reach on the host, and only that:
 * - each forward: pasta listens on the namespace's loopback at the guest
 *   port and connects to the host's 127.0.0.1 at the host port, one
 *   connection for each of the guest's;
 * - the guest API (guest_api/server.ts) at 10.0.2.100:8080, a forward like
 *   the others, to the port the API listens on at the host's 127.0.0.1;
 * - nothing else. pasta does not map the gateway to the host (--no-map-gw),
 *   forwards no ports by itself (-t/-u/-T/-U none but the forwards), and every
 *   address of the host is a prohibited route in the namespace, so that a
 *   connection to one of them fails there rather than reaching the host
 *   through pasta.
 * "restricted" leaves pasta's interface down: no route out, forwards only.
 */

import { isIP } from "node:net";
import { join } from "node:path";
import {
  FORWARD_ADDRESS,
  type GuestForward,
  type NetworkMode,
} from "../vm/mod.ts";

/**
 * The guest port of the guest API at 10.0.2.100: the original's port (its
 * template used http://10.0.2.2:8080), so it is reserved for no forward.
 */
export const GUEST_API_PORT = 8080;

/** FORREST_API_URL: where a guest reaches the guest API. */
export const GUEST_API_URL = `http://${FORWARD_ADDRESS}:${GUEST_API_PORT}`;

/** The forward that carries the guest API to where it listens on the host. */
export function guestApiForward(hostPort: number): GuestForward {
  return { guestPort: GUEST_API_PORT, hostAddress: "127.0.0.1", hostPort };
}

/** Files of the network helper, in the run directory. */
export const NETWORK_FILES = Object.freeze({
  pid: "pasta.pid",
  log: "pasta.log",
});

/**
 * The command that qemu's command is appended to: new user and network
 * namespaces (unshare execs, so the pid stays qemu's), loopback up, the
 * host's addresses prohibited, then qemu. `blocked` are IP addresses.
 *
 * @throws {TypeError} for something in `blocked` that is not an IP address
 */
export function namespaceCommand(blocked: readonly string[]): string[] {
  const lines = [
    'PATH="$PATH:/usr/sbin:/sbin"',
    "set -e",
    "ip link set lo up",
  ];
  for (const address of blocked) {
    const family = isIP(address);
    if (family === 0) {
      throw new TypeError(`Cannot block "${address}": not an IP address`);
    }
    lines.push(
      family === 4
        ? `ip route add prohibit ${address}/32`
        : `ip -6 route add prohibit ${address}/128`,
    );
  }
  lines.push('exec "$0" "$@"');
  return [
    "unshare",
    "--user",
    "--map-root-user",
    "--net",
    "--",
    "sh",
    "-c",
    lines.join("\n"),
  ];
}

export interface PastaArgsOptions {
  readonly mode: Exclude<NetworkMode, "unsafe-host">;
  readonly forwards: readonly GuestForward[];
  /** qemu's pid: pasta joins its user and network namespaces. */
  readonly pid: number;
  /** The run directory, for pasta's pid file and log. */
  readonly dir: string;
  /**
   * pasta run by root drops to "nobody", which cannot join the namespaces;
   * --runas 0 keeps it root.
   */
  readonly root: boolean;
}

/** pasta's arguments (without the program name). */
export function pastaArgs(options: PastaArgsOptions): string[] {
  const forwards = options.forwards.map((f) => `${f.guestPort}:${f.hostPort}`)
    .join(",");
  return [
    ...(options.root ? ["--runas", "0"] : []),
    "--foreground",
    "--pid",
    join(options.dir, NETWORK_FILES.pid),
    "--log-file",
    join(options.dir, NETWORK_FILES.log),
    "--no-map-gw",
    "--tcp-ports",
    "none",
    "--udp-ports",
    "none",
    "--tcp-ns",
    forwards || "none",
    "--udp-ns",
    "none",
    // The interface stays down without it: no route out of the namespace.
    ...(options.mode === "user" ? ["--config-net"] : []),
    String(options.pid),
  ];
}

/**
 * The host's addresses that a guest must not reach through pasta: all but
 * loopback ones (the namespace has a loopback of its own). Link-local IPv6
 * addresses come without their zone.
 */
export function hostAddressesToBlock(
  interfaces: readonly Pick<Deno.NetworkInterfaceInfo, "address">[],
): string[] {
  const addresses = new Set<string>();
  for (const { address } of interfaces) {
    const bare = address.replace(/%.*$/, "");
    if (isIP(bare) === 0) continue;
    if (bare === "::1" || bare.startsWith("127.")) continue;
    addresses.add(bare);
  }
  return [...addresses].sort();
}

/** Whether forwards can reach `host`: pasta connects to 127.0.0.1 only. */
export function isForwardHost(host: string): boolean {
  return host === "127.0.0.1" || host === "localhost";
}
