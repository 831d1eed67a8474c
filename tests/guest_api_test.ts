/**
 * The guest API from a real guest: `forrest exec --machine` serves it for
 * its one VM, and the job uploads with the requests the
 * forrest-runner/upload-artifact action makes (PUT, chunked, its
 * user-agent, keep-alive, `authorization: Bearer <run token> [<token>]`,
 * reading FORREST_API_URL and FORREST_RUN_TOKEN_FILE). What lands, what is
 * refused and what is left on the host is checked on the host.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runForrest } from "./cli.ts";
import { testDebianImage } from "./debian_image.ts";
import { filesUnder, processesUnder } from "./processes.ts";
import { withTempDir } from "./temp.ts";

/** One upload as the action makes it; prints "STATUS CONTENT-LOCATION". */
const GUEST_SCRIPT = String.raw`
set -u
token=$(cat "$FORREST_RUN_TOKEN_FILE")
put() {
  curl -s --path-as-is -o /dev/null \
    -w '%{http_code} %header{content-location}\n' \
    -T "$3" -H "authorization: $1" \
    -H "user-agent: forrest-upload-artifact/0.1" \
    -H "Transfer-Encoding: chunked" -H "Connection: keep-alive" \
    "$FORREST_API_URL$2"
}
cd /tmp
head -c 10000 /dev/urandom > small.bin
sha256sum small.bin | cut -c1-64
head -c 100000 /dev/zero > big.bin
put "Bearer $token" /artifact/artifact/deploy/small.bin small.bin
put "Bearer $token" /artifact/artifact/big.bin big.bin
put "Bearer not-$token" /artifact/artifact/other.bin small.bin
put "Bearer $token" /artifact/release/v1.bin small.bin
put "Bearer $token release-secret" /artifact/release/v1.bin small.bin
put "Bearer $token" /artifact/artifact/../escape.bin small.bin
put "Bearer $token" /artifact/artifact/%2e%2e/escape.bin small.bin
`;

Deno.test("exec --machine: a guest uploads with the upload-artifact action's requests, within its quota", async () => {
  const image = await testDebianImage();
  await withTempDir(async (base) => {
    const config = join(base, "forrest.toml");
    await Deno.writeTextFile(
      config,
      `[host]
base_dir = "${base}"
ram = "4G"
accel = "tcg"

[repositories.acme.app.machines.build]
base_image = "${image}"
ram = "1G"
network = "restricted"
artifacts = [
  { path = "${base}/store/<RUNNER_NAME>", url = "https://ci.example.org/artifacts/<RUNNER_NAME>", quota = "64K" },
  { name = "release", path = "${base}/release", url = "https://ci.example.org/release/", quota = "1M", token = "release-secret" },
]
`,
    );
    const result = await runForrest([
      "exec",
      "-c",
      config,
      "--machine",
      "acme/app/build",
      "--",
      "bash",
      "-c",
      GUEST_SCRIPT,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const [hash, ...answers] = result.stdout.replace(/\n$/, "").split("\n");
    const runners = await Array.fromAsync(
      Deno.readDir(join(base, "store")),
      (entry) => entry.name,
    );
    assert.equal(runners.length, 1);
    const runner = runners[0]!;
    assert.match(runner, /^exec-[a-z0-9]{16}$/);
    assert.deepEqual(answers, [
      `201 https://ci.example.org/artifacts/${runner}/deploy/small.bin`,
      // 10 000 of 64 KiB used: 100 000 more do not fit.
      "507 ",
      "404 ",
      // The release store wants its token.
      "404 ",
      "201 https://ci.example.org/release/v1.bin",
      "400 ",
      "400 ",
    ]);
    const stored = await Deno.readFile(
      join(base, "store", runner, "deploy/small.bin"),
    );
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", stored),
    );
    assert.equal(
      Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
      hash,
    );
    // Nothing else: no refused upload, no temporary file, nothing outside.
    assert.deepEqual(await filesUnder(join(base, "store")), [
      `${runner}/deploy/small.bin`,
    ]);
    assert.deepEqual(await filesUnder(join(base, "release")), ["v1.bin"]);
    assert.ok(!(await filesUnder(base)).some((f) => f.endsWith("escape.bin")));
    assert.deepEqual(await processesUnder(base), []);
  });
});
