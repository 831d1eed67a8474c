/**
 * What a guest can reach (product.md §14), with real traffic: `forrest exec`
 * runs in a test "host" namespace whose loopback and own addresses have
 * servers on them, next to a test "internet" namespace. By default a guest
 * reaches the internet over IPv4 and IPv6 and its forwards, and nothing
 * that listens on the host; "restricted" reaches only its forwards;
 * "unsafe-host" (the old behaviour, by name only) reaches the host's
 * loopback. No packet leaves the machine: the host namespace's only way
 * out is the internet namespace.
 */

import assert from "node:assert/strict";
import { execArgs, runForrest } from "./cli.ts";
import { testDebianImage } from "./debian_image.ts";
import {
  HOST_V4,
  HOST_V6,
  INTERNET_V4,
  INTERNET_V6,
  TestNetwork,
  unavailable,
} from "./netns.ts";
import { processesUnder } from "./processes.ts";
import { withTempDir } from "./temp.ts";

const skip = await unavailable();
if (skip) console.warn(`guest network tests skipped: ${skip}`);

const HOST_PORT = 18777;
const FORWARD_PORT = 18780;

/** URL → what the guest must get: a body, or "FAIL" (no connection). */
type Expected = Readonly<Record<string, string>>;

const REACHABLE_OUTSIDE: Expected = {
  [`http://${INTERNET_V4}:8080/`]: "internet",
  [`http://[${INTERNET_V6}]:8080/`]: "internet",
};
const FORWARD: Expected = { "http://10.0.2.100/": "forwarded" };
const HOST_SERVICES: Expected = {
  [`http://10.0.2.2:${HOST_PORT}/`]: "FAIL",
  [`http://10.0.2.100:${HOST_PORT}/`]: "FAIL",
  [`http://10.0.2.1:${HOST_PORT}/`]: "FAIL",
  [`http://10.0.2.4:${HOST_PORT}/`]: "FAIL",
  [`http://[fec0::2]:${HOST_PORT}/`]: "FAIL",
  [`http://${HOST_V4}:${HOST_PORT}/`]: "FAIL",
  [`http://[${HOST_V6}]:${HOST_PORT}/`]: "FAIL",
};

/** A shell line that fetches each URL and prints "URL BODY" or "URL FAIL". */
function probeScript(urls: readonly string[]): string {
  return urls.map((url) =>
    `printf '%s %s\\n' '${url}' "$(curl -sf -m 5 '${url}' || echo FAIL)"`
  ).join("; ");
}

function parseProbes(stdout: string): Record<string, string> {
  return Object.fromEntries(
    stdout.trim().split("\n").map((line) => {
      const space = line.indexOf(" ");
      return [line.slice(0, space), line.slice(space + 1)];
    }),
  );
}

Deno.test({
  name:
    "forrest exec: a guest reaches the internet and its forwards, never the host",
  ignore: skip !== undefined,
  async fn() {
    const image = await testDebianImage();
    const net = await TestNetwork.create();
    try {
      await net.serve("internet", [
        [INTERNET_V4, 8080, "internet"],
        [INTERNET_V6, 8080, "internet"],
      ]);
      await net.serve("host", [
        ["127.0.0.1", HOST_PORT, "host-loopback"],
        ["::1", HOST_PORT, "host-loopback"],
        [HOST_V4, HOST_PORT, "host-address"],
        [HOST_V6, HOST_PORT, "host-address"],
        ["127.0.0.1", FORWARD_PORT, "forwarded"],
      ]);
      const run = (mode: string, expected: Expected) =>
        withTempDir(async (base) => {
          const result = await runForrest(
            execArgs({ image, baseDir: base, network: mode }, [
              "--forward",
              `80:127.0.0.1:${FORWARD_PORT}`,
              "--",
              "sh",
              "-c",
              probeScript(Object.keys(expected)),
            ]),
            { prefix: net.hostPrefix },
          );
          assert.equal(result.code, 0, result.stderr);
          assert.deepEqual(parseProbes(result.stdout), expected, mode);
          assert.deepEqual(await processesUnder(base), [], "left running");
        }, "forrest-net-");
      // Two cores: the three boots in parallel.
      await Promise.all([
        run("user", { ...REACHABLE_OUTSIDE, ...FORWARD, ...HOST_SERVICES }),
        run("restricted", {
          ...Object.fromEntries(
            Object.keys(REACHABLE_OUTSIDE).map((url) => [url, "FAIL"]),
          ),
          ...FORWARD,
          ...HOST_SERVICES,
        }),
        // The old behaviour, asked for by name: the host's loopback is open.
        run("unsafe-host", {
          [`http://10.0.2.2:${HOST_PORT}/`]: "host-loopback",
          ...FORWARD,
        }),
      ]);
    } finally {
      await net.close();
    }
  },
});
