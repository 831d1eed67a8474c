/**
 * The runner stand-in (standin/forgejo-runner) run on the host with sh
 * against the double, end to end: a runner registered over the API takes
 * its job by handle, runs the script in $HOME and is gone afterwards; and
 * it refuses what forgejo-runner 12.8 refuses.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../temp.ts";
import { ForgejoDouble } from "./double.ts";
import { STANDIN_RUNNER_PATH } from "./standin.ts";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function runStandin(
  home: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<Run> {
  const { code, stdout, stderr } = await new Deno.Command("sh", {
    args: [STANDIN_RUNNER_PATH, ...args],
    cwd: home,
    clearEnv: true,
    env: { HOME: home, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

interface Setup {
  readonly double: ForgejoDouble;
  readonly home: string;
  /** alice's write:repository token. */
  readonly secret: string;
  /** Registers an ephemeral runner; its token written to a file. */
  readonly register: (
    tokenSuffix?: string,
  ) => Promise<{ id: number; uuid: string; tokenFile: string }>;
}

async function withStandin(body: (setup: Setup) => Promise<void>) {
  await withTempDir(async (home) => {
    await using double = await ForgejoDouble.start();
    double.addUser("alice");
    double.addRepo("alice", "app");
    const secret = double.addToken("alice", ["write:repository"]);
    let n = 0;
    const register = async (tokenSuffix = "") => {
      const response = await fetch(
        `${double.url}/api/v1/repos/alice/app/actions/runners`,
        {
          method: "POST",
          headers: {
            authorization: `token ${secret}`,
            "content-type": "application/json",
          },
          body: JSON.stringify({ name: `fr-${++n}`, ephemeral: true }),
        },
      );
      assert.equal(response.status, 201);
      const runner = await response.json();
      const tokenFile = join(home, `token-${n}`);
      await Deno.writeTextFile(tokenFile, runner.token + tokenSuffix);
      return { id: runner.id, uuid: runner.uuid, tokenFile };
    };
    await body({ double, home, secret, register });
  }, "forrest-forgejo-standin-");
}

Deno.test("forgejo-runner stand-in runs its job by handle in $HOME and its ephemeral runner is gone", async () => {
  await withStandin(async ({ double, home, secret, register }) => {
    const job = double.queueJob({
      owner: "alice",
      repo: "app",
      runsOn: ["debian", "big"],
      script: 'echo "ran in $PWD" > marker\nexit 0',
    });
    const runner = await register();
    const run = await runStandin(home, [
      "one-job",
      `--url=${double.url}/`,
      "--uuid",
      runner.uuid,
      `--token-url=file://${runner.tokenFile}`,
      "--label",
      "debian:host",
      "--label=big:host",
      "--handle",
      job.handle,
      "--wait",
    ]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      /^forgejo-runner \(stand-in\): declared labels debian,big/m,
    );
    assert.match(run.stdout, /the job's script exited 0/);
    assert.equal(
      await Deno.readTextFile(join(home, "marker")),
      `ran in ${home}\n`,
    );
    const done = double.job(job.id)!;
    assert.equal(done.status, "success");
    assert.equal(done.exitCode, 0);
    assert.equal(done.runnerId, runner.id);
    assert.deepEqual(double.runners(), []);

    // A failing job: the runner still exits 0; Forgejo has the result.
    const failing = double.queueJob({
      owner: "alice",
      repo: "app",
      runsOn: ["debian"],
      script: "exit 7",
    });
    const second = await register();
    const again = await runStandin(home, [
      "one-job",
      "--url",
      double.url,
      "--uuid",
      second.uuid,
      "--token-url",
      `file:${second.tokenFile}`,
      "--label",
      "debian:host",
      "--handle",
      failing.handle,
    ]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(double.job(failing.id)!.status, "failure");
    assert.equal(double.job(failing.id)!.exitCode, 7);
    const gone = await fetch(
      `${double.url}/api/v1/repos/alice/app/actions/runners/${second.id}`,
      { method: "DELETE", headers: { authorization: `token ${secret}` } },
    );
    await gone.body?.cancel();
    assert.equal(gone.status, 404);
  });
});

Deno.test("forgejo-runner stand-in refuses a token file with a trailing newline", async () => {
  await withStandin(async ({ double, home, register }) => {
    const job = double.queueJob({ owner: "alice", repo: "app", runsOn: ["x"] });
    const runner = await register("\n");
    const run = await runStandin(home, [
      "one-job",
      "--url",
      double.url,
      "--uuid",
      runner.uuid,
      "--token-url",
      `file:${runner.tokenFile}`,
      "--label",
      "x:host",
      "--handle",
      job.handle,
      "--wait",
    ]);
    assert.equal(run.code, 1);
    assert.match(
      run.stderr,
      /Error: declare: the uuid or token was refused \(401 unregistered runner\): .*does the token file end in a newline\?/,
    );
    assert.equal(double.job(job.id)!.status, "waiting");
    assert.equal(double.runners()[0]?.status, "offline");
  });
});

Deno.test("forgejo-runner stand-in exits 2 without a task, and with --wait keeps polling", async () => {
  await withStandin(async ({ double, home, register }) => {
    // Its runs-on needs a label the runner does not declare.
    const job = double.queueJob({
      owner: "alice",
      repo: "app",
      runsOn: ["x", "y"],
    });
    const runner = await register();
    const args = [
      "one-job",
      "--url",
      double.url,
      "--uuid",
      runner.uuid,
      "--token-url",
      `file:${runner.tokenFile}`,
      "--label",
      "x:host",
      "--handle",
      job.handle,
    ];
    const once = await runStandin(home, args);
    assert.equal(once.code, 2);
    assert.match(once.stderr, /no task received/);
    const waiting = await runStandin(home, [...args, "-w"], {
      FORGEJO_RUNNER_STANDIN_MAX_POLLS: "2",
    });
    assert.equal(waiting.code, 1);
    assert.match(waiting.stdout, /waiting for the task/);
    assert.match(waiting.stderr, /no task after 2 polls/);
    assert.equal(double.job(job.id)!.status, "waiting");
    assert.equal(double.runners()[0]?.status, "idle");
  });
});

Deno.test("forgejo-runner stand-in refuses what the real runner refuses", async () => {
  await withStandin(async ({ double, home, register }) => {
    const runner = await register();
    const base = [
      "--url",
      double.url,
      "--uuid",
      runner.uuid,
      "--token-url",
      `file:${runner.tokenFile}`,
    ];
    const refused = async (args: readonly string[], message: RegExp) => {
      const run = await runStandin(home, args);
      assert.equal(run.code, 1, `${args.join(" ")}: ${run.stdout}`);
      assert.match(run.stderr, message);
    };
    await refused(
      ["one-job", ...base, "--label", "x:host:y"],
      /schema: host does not have arguments/,
    );
    await refused(
      ["one-job", ...base, "--label", "x:docker://node:22"],
      /supports only the host scheme/,
    );
    await refused(
      ["one-job", ...base, "--label", "x"],
      /supports only the host scheme/,
    );
    await refused(
      ["one-job", ...base, "--label", "x:vm"],
      /unsupported schema: vm/,
    );
    await refused(["daemon", ...base], /unknown command "daemon"/);
    await refused(
      ["one-job", ...base, "--config", "c.yml"],
      /unknown flag: --config/,
    );
    await refused(
      ["one-job", ...base, "--handle"],
      /flag needs an argument: --handle/,
    );
    await refused(
      [
        "one-job",
        "--url",
        double.url,
        "--uuid",
        runner.uuid,
        "--token-url",
        runner.tokenFile,
      ],
      /only file: URLs are supported/,
    );
    await refused(["one-job", "--uuid", runner.uuid], /--url is required/);
    // Nothing reached the double as this runner.
    assert.equal(double.runners()[0]?.status, "offline");
  });
});
