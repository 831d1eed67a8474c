/**
 * `forrest serve` with a Forgejo instance (product.md §12), end to end under
 * TCG against the Forgejo double: a waiting job gets an ephemeral runner
 * and a VM whose guest runs the built-in template's `forgejo-runner one-job`
 * (the stand-in, downloaded from the double) for that job's handle; the
 * per-repository CI user's package token works in the guest and is gone
 * afterwards; a cancelled job stops its machine; a crash mid-job leaves
 * nothing behind after the next start. The same daemon serves GitHub.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ciUserName } from "../src/config/mod.ts";
import { runForrest, startForrest } from "./cli.ts";
import { testDebianImage } from "./debian_image.ts";
import { ForgejoDouble } from "./forgejo/mod.ts";
import { withTempDir } from "./temp.ts";
import {
  FORGEJO_OWNER,
  FORGEJO_REPO,
  LABELS,
  OWNER,
  REPO,
  type Serving,
  withServe,
} from "./serve.ts";

const JOB_TIMEOUT = 300_000;
/** A Forgejo job for the repository's Debian machine. */
const RUNS_ON = ["debian"];

async function waitFor(
  check: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const ciUser = () => ciUserName(FORGEJO_OWNER, FORGEJO_REPO);

/** The job's script: pushes a generic package with the job's token. */
const PUSH = [
  'echo "firmware $JOB_MARK" > firmware.bin',
  'code=$(curl -s -o /dev/null -w "%{http_code}" -u "$FORREST_PACKAGE_USER:$(cat "$FORREST_PACKAGE_TOKEN_FILE")" -T firmware.bin "http://10.0.2.100:80/api/packages/$FORREST_PACKAGE_USER/generic/firmware/1.0/firmware.bin")',
  'echo "upload answered $code"',
  '[ "$code" = 201 ]',
].join("\n");

Deno.test({
  name:
    "serve: a Forgejo job runs on its own runner and VM, with a working package token that is gone afterwards, beside a GitHub job",
  async fn() {
    const image = await testDebianImage();
    await withServe({
      image,
      forgejo: { repositoryToml: "package_token = true" },
    }, async (s) => {
      const forgejo = s.forgejo!;
      const job = forgejo.queueJob({
        owner: FORGEJO_OWNER,
        repo: FORGEJO_REPO,
        runsOn: RUNS_ON,
        script: `JOB_MARK=forgejo\n${PUSH}`,
      });
      // A GitHub job at the same time, in the same daemon.
      const github = await s.double.queueJob({
        owner: OWNER,
        repo: REPO,
        labels: LABELS,
        script: "echo github job",
      });
      // The runner was registered ephemeral, for this job alone.
      await waitFor(
        () => forgejo.runners().length === 1,
        60_000,
        "the ephemeral runner",
      );
      const [runner] = forgejo.runners();
      // Status names the machine by its key, the instance's name first.
      const status = await s.status();
      assert.ok(
        status.machines.some((m) =>
          m.triplet === `test:${FORGEJO_OWNER}/${FORGEJO_REPO}/debian` &&
          m.runner === runner!.name
        ),
        JSON.stringify(status),
      );
      assert.ok(runner!.ephemeral);
      assert.match(runner!.name, /^forrest-debian-/);
      assert.equal(runner!.scope, `repo:${FORGEJO_OWNER}/${FORGEJO_REPO}`);
      await waitFor(
        () =>
          ["success", "failure"].includes(forgejo.job(job.id)?.status ?? "") &&
          s.double.job(github.id)?.status === "completed",
        JOB_TIMEOUT,
        "both jobs",
      );
      const done = forgejo.job(job.id)!;
      assert.equal(done.status, "success", s.log());
      assert.equal(done.runnerId, runner!.id);
      assert.equal(s.double.job(github.id)!.conclusion, "success");
      // The guest's token pushed the package, as the CI user.
      const user = ciUser();
      assert.deepEqual(
        forgejo.packageUploads.map((u) => [u.owner, u.package, u.user]),
        [[user, "firmware", user]],
      );
      const ci = forgejo.users().find((u) => u.login === user)!;
      assert.equal(ci.mustChangePassword, false);
      await s.waitForStatus(
        (st) => st.machines.length === 0,
        60_000,
        "the machines gone",
      );
      // Gone afterwards: the runner (Forgejo's doing) and the token (ours).
      assert.deepEqual(forgejo.runners(), []);
      assert.deepEqual(forgejo.tokensOf(user), []);
      // The CI user's password is Forrest's, on disk for Forrest alone.
      const state = join(s.baseDir, "forgejo/test/ci-users.json");
      assert.equal((await Deno.stat(state)).mode! & 0o777, 0o600);
      const password = JSON.parse(await Deno.readTextFile(state))[user];
      assert.match(password, /^[0-9a-f]{64}$/);
      assert.ok(!s.log().includes(password), "the password was logged");
      assert.ok(!JSON.stringify(await s.status()).includes(password));
      assert.match(s.log(), /Created CI user/);
    });
  },
});

Deno.test({
  name:
    "serve: a Forgejo job cancelled before its runner takes it stops its machine",
  async fn() {
    const image = await testDebianImage();
    await withServe({ image, forgejo: {} }, async (s) => {
      const forgejo = s.forgejo!;
      // Labels the machine has, but a job the stand-in waits on while the
      // test cancels it: the VM is still booting.
      const job = forgejo.queueJob({
        owner: FORGEJO_OWNER,
        repo: FORGEJO_REPO,
        runsOn: RUNS_ON,
        script: "echo should not run",
      });
      await s.waitForStatus(
        (st) => st.machines.some((m) => m.state === "starting"),
        60_000,
        "the machine booting",
      );
      // /metrics counts it like any machine.
      const metrics = await (await s.fetch("/metrics")).text();
      assert.match(metrics, /^forrest_machines\{state="starting"\} 1$/m);
      assert.equal(forgejo.runners().length, 1);
      forgejo.cancelJob(job.id);
      await s.waitForLog('("surplus")', 60_000);
      await s.waitForStatus(
        (st) => st.machines.length === 0,
        60_000,
        "the machine gone",
      );
      assert.equal(forgejo.job(job.id)!.status, "cancelled");
      assert.equal(forgejo.job(job.id)!.runnerId, undefined);
      assert.deepEqual(forgejo.runners(), [], "its runner was deleted");
    });
  },
});

Deno.test({
  name:
    "serve: a crash in the middle of a Forgejo job leaves no VM, runner or package token after the next start",
  async fn() {
    const image = await testDebianImage();
    await withServe({
      image,
      forgejo: { repositoryToml: "package_token = true" },
    }, async (s: Serving) => {
      const forgejo = s.forgejo!;
      const job = forgejo.queueJob({
        owner: FORGEJO_OWNER,
        repo: FORGEJO_REPO,
        runsOn: RUNS_ON,
        script: "sleep 600",
      });
      await waitFor(
        () => forgejo.job(job.id)?.status === "running",
        JOB_TIMEOUT,
        "the job running",
      );
      const user = ciUser();
      assert.equal(forgejo.tokensOf(user).length, 1);
      await s.crashAndRestart();
      // Recovery stopped the VM; the janitor deletes the runner; the
      // forge's start swept the token.
      await waitFor(
        () => forgejo.runners().length === 0,
        60_000,
        "the runner deleted",
      );
      assert.deepEqual(forgejo.tokensOf(user), []);
      assert.match(s.log(), /Deleted package token "forrest-debian-/);
      await s.waitForStatus(
        (st) => st.machines.length === 0,
        30_000,
        "no machine",
      );
    });
  },
});

/** A Forgejo-only config: no [github] table. */
async function forgejoOnly(dir: string, forgejo: ForgejoDouble, token: string) {
  await Deno.mkdir(join(dir, "base"));
  await Deno.writeTextFile(join(dir, "token"), token);
  await Deno.writeTextFile(
    join(dir, "forrest.toml"),
    `[host]
base_dir = "${dir}/base"
ram = "8G"

[forgejo.codeberg]
url = "${forgejo.url}"
token_file = "token"

[repositories.alice.app]
forge = "codeberg"

[repositories.alice.app.machines.build]
base_image = "x.img"
`,
  );
}

Deno.test("serve: a config with only Forgejo needs no [github] table, and takes no webhooks", async () => {
  await withTempDir(async (dir) => {
    await using forgejo = await ForgejoDouble.start();
    forgejo.addUser("alice");
    forgejo.addRepo("alice", "app");
    await forgejoOnly(dir, forgejo, forgejo.addToken("alice", ["all"]));
    const child = startForrest(["serve", "--config", "forrest.toml"], {
      cwd: dir,
    });
    child.stdin.close();
    child.stdout.cancel();
    let log = "";
    const reading = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (chunk) => void (log += chunk) }),
    );
    try {
      await waitFor(() => log.includes("Serving"), 30_000, "Serving");
      assert.match(log, /Serving 1 repository/);
      const client = Deno.createHttpClient({
        proxy: { transport: "unix", path: join(dir, "base/api.sock") },
      });
      try {
        const answer = await fetch("http://forrest/webhook", {
          method: "POST",
          body: "{}",
          client,
        });
        assert.equal(answer.status, 404);
        assert.match(await answer.text(), /no \[github\] table/);
      } finally {
        client.close();
      }
      // The poller asked for the repository's waiting jobs.
      await waitFor(
        () =>
          forgejo.requests.some((r) =>
            r.path === "/api/v1/repos/alice/app/actions/runners/jobs"
          ),
        30_000,
        "a poll",
      );
    } finally {
      child.kill("SIGTERM");
      const status = await child.status;
      await reading;
      assert.equal(status.code, 0, log);
    }
  });
});

Deno.test("serve: refuses a Forgejo older than 15, and a token Forgejo refuses, with exit 2", async () => {
  await withTempDir(async (dir) => {
    await using old = await ForgejoDouble.start({ version: "14.0.5" });
    old.addUser("alice");
    old.addRepo("alice", "app");
    await forgejoOnly(dir, old, old.addToken("alice", ["all"]));
    const result = await runForrest(["serve", "--config", "forrest.toml"], {
      cwd: dir,
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /Forgejo "codeberg" \(http:\/\/127\.0\.0\.1:\d+\) is version "14\.0\.5": Forrest needs Forgejo 15 or newer/,
    );
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  });
  await withTempDir(async (dir) => {
    await using forgejo = await ForgejoDouble.start();
    forgejo.addUser("alice");
    forgejo.addRepo("alice", "app");
    // A token without the repository scope.
    await forgejoOnly(dir, forgejo, forgejo.addToken("alice", ["read:user"]));
    const result = await runForrest(["serve", "--config", "forrest.toml"], {
      cwd: dir,
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /Forgejo "codeberg" \(http:\/\/127\.0\.0\.1:\d+\): repository alice\/app on codeberg: GET \/repos\/alice\/app\/actions\/runners: 403 /,
    );
  });
});
