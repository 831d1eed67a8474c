/**
 * Users of the original forrest keep their setup template: its generic
 * template (an equivalent, tests/fixtures/original-template) runs in a
 * Forrest image under `forrest serve`. Its job.sh needs bash (pipefail),
 * finds the runner in $HOME as a persisted image of the original would have
 * it, exports the guest API's environment and starts the runner with the
 * JIT config. The runner is the tests' stand-in; its job checks what the
 * template gave it and uploads through serve's guest API.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { testDebianImage } from "./debian_image.ts";
import { STANDIN_TEMPLATE_DIR } from "./github/mod.ts";
import { LABELS, OWNER, REPO, withServe } from "./serve.ts";
import { withTempDir } from "./temp.ts";

const ORIGINAL_TEMPLATE = fileURLToPath(
  new URL("./fixtures/original-template", import.meta.url),
);
const RUNNER_VERSION = "2.999.0";

async function run(command: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(command, { args }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${command} failed: ${text}`);
  return text;
}

/**
 * A copy of the test image with what a run of the original's template left
 * in /home/runner: the runner tarball and the runner unpacked in runner/
 * (here the stand-in, which takes --jitconfig as the real run.sh does).
 */
async function imageWithRunner(dir: string): Promise<string> {
  const image = join(dir, "with-runner.img");
  await run("cp", ["--sparse=always", await testDebianImage(), image]);
  const standin = await Deno.readTextFile(
    join(STANDIN_TEMPLATE_DIR, "job-config/job.sh"),
  );
  const runSh = standin
    .replace(
      'jit="<JITCONFIG>"',
      '[ "${1:-}" = --jitconfig ] || exit 2\njit="$2"',
    )
    .replace('name="<RUNNER_NAME>"', 'name="$(hostname)"');
  assert.ok(!runSh.includes("<JITCONFIG>"), "the stand-in reads its argument");
  await Deno.writeTextFile(join(dir, "run.sh"), runSh);
  await Deno.mkdir(join(dir, "tar/runner"), { recursive: true });
  await Deno.copyFile(join(dir, "run.sh"), join(dir, "tar/runner/run.sh"));
  const tarball = `actions-runner-linux-x64-${RUNNER_VERSION}.tar.gz`;
  await run("tar", [
    "-czf",
    join(dir, tarball),
    "-C",
    join(dir, "tar/runner"),
    ".",
  ]);
  const owned = (path: string, mode: string) => [
    `sif ${path} uid 1001`,
    `sif ${path} gid 1001`,
    `sif ${path} mode ${mode}`,
  ];
  const commands = [
    "cd /home/runner",
    `write ${join(dir, tarball)} ${tarball}`,
    ...owned(`/home/runner/${tarball}`, "0100644"),
    "mkdir runner",
    ...owned("/home/runner/runner", "040755"),
    "cd runner",
    `write ${join(dir, "run.sh")} run.sh`,
    ...owned("/home/runner/runner/run.sh", "0100755"),
  ];
  await Deno.writeTextFile(join(dir, "debugfs.cmd"), commands.join("\n"));
  await run("debugfs", ["-w", "-f", join(dir, "debugfs.cmd"), image]);
  return image;
}

/** The job: what the template must have given it, then an upload. */
const JOB = String.raw`
set -e
test "$FORREST_API_URL" = http://10.0.2.2:8080
test "$FORREST_RUN_TOKEN_FILE" = /home/runner/config/run-token
token=$(cat "$FORREST_RUN_TOKEN_FILE")
printf %s "$token" | grep -Eqx '[A-Za-z0-9]{32}'
echo from-the-original-template > out.txt
code=$(curl -s -o /dev/null -w '%{http_code}' -T out.txt \
  -H "authorization: Bearer $token" \
  http://10.0.2.100:8080/artifact/artifact/logs/out.txt)
test "$code" = 201
`;

Deno.test("serve: the original's generic template runs unchanged in a Forrest image, and its job uploads", async () => {
  await withTempDir(async (dir) => {
    const image = await imageWithRunner(dir);
    await withServe({
      image,
      setupTemplate: `{ path = "${ORIGINAL_TEMPLATE}", parameters = { ` +
        `RUNNER_VERSION = "${RUNNER_VERSION}", RUNNER_HASH = "unused-the-tarball-is-there" } }`,
      machineToml:
        `artifacts = [{ path = "${dir}/store/<RUNNER_NAME>", url = "https://ci.example.org/<RUNNER_NAME>", quota = "1M" }]`,
    }, async (s) => {
      const job = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: LABELS,
        script: `bash -c '${JOB.replaceAll("'", `'\\''`)}'`,
      });
      await s.double.waitFor(
        () => s.double.job(job.id)?.status === "completed",
        240_000,
        "the job completed",
      );
      assert.equal(s.double.job(job.id)?.conclusion, "success");
      const runners = await Array.fromAsync(
        Deno.readDir(join(dir, "store")),
        (entry) => entry.name,
      );
      assert.equal(runners.length, 1);
      assert.match(runners[0]!, /^forrest-debian-/);
      assert.equal(
        await Deno.readTextFile(
          join(dir, "store", runners[0]!, "logs/out.txt"),
        ),
        "from-the-original-template\n",
      );
    });
  });
});
