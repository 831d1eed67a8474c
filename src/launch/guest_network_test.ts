import assert from "node:assert/strict";
import {
  hostAddressesToBlock,
  isForwardHost,
  namespaceCommand,
  pastaArgs,
} from "./guest_network.ts";

Deno.test("namespaceCommand() prohibits each host address, then execs qemu", () => {
  const argv = namespaceCommand(["192.0.2.2", "fd00::2"]);
  assert.deepEqual(argv.slice(0, 7), [
    "unshare",
    "--user",
    "--map-root-user",
    "--net",
    "--",
    "sh",
    "-c",
  ]);
  assert.deepEqual(argv[7]!.split("\n"), [
    'PATH="$PATH:/usr/sbin:/sbin"',
    "set -e",
    "ip link set lo up",
    "ip route add prohibit 192.0.2.2/32",
    "ip -6 route add prohibit fd00::2/128",
    'exec "$0" "$@"',
  ]);
  assert.equal(argv.length, 8);
});

Deno.test("namespaceCommand() rejects what is not an IP address", () => {
  assert.throws(
    () => namespaceCommand(["1.2.3.4; rm -rf /"]),
    (error: unknown) =>
      error instanceof TypeError &&
      error.message === 'Cannot block "1.2.3.4; rm -rf /": not an IP address',
  );
});

Deno.test("pastaArgs() forwards nothing by itself and no gateway to the host", () => {
  const args = pastaArgs({
    mode: "user",
    forwards: [
      { guestPort: 80, hostAddress: "127.0.0.1", hostPort: 3142 },
      { guestPort: 443, hostAddress: "localhost", hostPort: 8443 },
    ],
    pid: 4242,
    dir: "/srv/forrest/runs/a/b/c/r",
    root: false,
  });
  assert.deepEqual(args, [
    "--foreground",
    "--pid",
    "/srv/forrest/runs/a/b/c/r/pasta.pid",
    "--log-file",
    "/srv/forrest/runs/a/b/c/r/pasta.log",
    "--no-map-gw",
    "--tcp-ports",
    "none",
    "--udp-ports",
    "none",
    "--tcp-ns",
    "80:3142,443:8443",
    "--udp-ns",
    "none",
    "--config-net",
    "4242",
  ]);
});

Deno.test("pastaArgs() leaves the interface down for restricted and keeps root as root", () => {
  const args = pastaArgs({
    mode: "restricted",
    forwards: [],
    pid: 7,
    dir: "/r",
    root: true,
  });
  assert.deepEqual(args.slice(0, 2), ["--runas", "0"]);
  assert.ok(!args.includes("--config-net"));
  assert.equal(args[args.indexOf("--tcp-ns") + 1], "none");
  assert.equal(args.at(-1), "7");
});

Deno.test("hostAddressesToBlock() takes every address but loopback, zones dropped", () => {
  assert.deepEqual(
    hostAddressesToBlock([
      { address: "127.0.0.1" },
      { address: "::1" },
      { address: "192.0.2.2" },
      { address: "fd00::2" },
      { address: "fe80::fc:ff:fe00:1%eth0" },
      { address: "192.0.2.2" },
      { address: "not-an-address" },
    ]),
    ["192.0.2.2", "fd00::2", "fe80::fc:ff:fe00:1"],
  );
});

Deno.test("isForwardHost() accepts the host's loopback only", () => {
  assert.ok(isForwardHost("127.0.0.1"));
  assert.ok(isForwardHost("localhost"));
  assert.ok(!isForwardHost("10.1.2.3"));
  assert.ok(!isForwardHost("cache.example.org"));
});
