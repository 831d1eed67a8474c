import assert from "node:assert/strict";
import { join } from "node:path";
import { readTemplate, renderTemplate } from "../../src/guest/template.ts";
import { withTempDir } from "../temp.ts";
import { GitHubDouble } from "./double.ts";
import { generateAppKey, signAppJwt } from "./jwt.ts";
import { type Received, startReceiver } from "./receiver.ts";
import { STANDIN_TEMPLATE_DIR, standinCall } from "./standin.ts";

const SECRET = "webhook-secret";
const APP_ID = 7;
const KEY = await generateAppKey();

function start(): Promise<GitHubDouble> {
  return GitHubDouble.start({
    appId: APP_ID,
    privateKeyPem: KEY,
    webhookSecret: SECRET,
  });
}

/** An installation token for octo/forrest, as Forrest gets them. */
async function tokenFor(gh: GitHubDouble): Promise<string> {
  const { installationId } = gh.addRepo("octo", "forrest");
  const now = Math.floor(Date.now() / 1000);
  const jwt = signAppJwt(KEY, { iat: now - 30, exp: now + 500, iss: APP_ID });
  const answer = await fetch(
    `${gh.url}/app/installations/${installationId}/access_tokens`,
    { method: "POST", headers: { authorization: `Bearer ${jwt}` } },
  );
  return `token ${(await answer.json()).token}`;
}

/** A JIT runner made through the API, as Forrest makes them. */
async function jitRunner(
  gh: GitHubDouble,
  name: string,
  labels: string[],
): Promise<{ id: number; config: string }> {
  const answer = await fetch(
    `${gh.url}/repos/octo/forrest/actions/runners/generate-jitconfig`,
    {
      method: "POST",
      headers: { authorization: await tokenFor(gh) },
      body: JSON.stringify({ name, runner_group_id: 1, labels }),
    },
  );
  const body = await answer.json();
  return { id: body.runner.id, config: body.encoded_jit_config };
}

function workflowJob(received: Received) {
  const payload = JSON.parse(received.body);
  return {
    signed: received.signed,
    event: received.event,
    action: payload.action,
    id: payload.workflow_job.id,
    status: payload.workflow_job.status,
    conclusion: payload.workflow_job.conclusion,
    runner: payload.workflow_job.runner_name,
    repo: payload.repository.full_name,
    owner: payload.repository.owner.login,
    installation: payload.installation.id,
  };
}

Deno.test("online, take and done move a job through its states, with webhooks", async () => {
  await using receiver = startReceiver(SECRET);
  await using gh = await start();
  gh.setWebhookTarget({ url: receiver.url! });
  const { installationId } = gh.addRepo("octo", "forrest");
  const runner = await jitRunner(gh, "vm-1", ["self-hosted", "Linux", "x64"]);
  const other = await jitRunner(gh, "vm-2", ["self-hosted", "arm64"]);
  const job = await gh.queueJob({
    owner: "octo",
    repo: "forrest",
    labels: ["self-hosted", "linux"],
    script: "echo hello",
  });

  assert.equal((await standinCall(gh, "online", runner.config)).status, 200);
  assert.equal(gh.runners("octo", "forrest")[0]!.status, "online");
  assert.equal((await standinCall(gh, "take", other.config)).status, 204);
  assert.deepEqual(await standinCall(gh, "take", runner.config), {
    status: 200,
    text: "echo hello",
  });
  assert.deepEqual(
    [gh.job(job.id)?.status, gh.job(job.id)?.runnerName],
    ["in_progress", "vm-1"],
  );
  assert.equal(gh.runners("octo", "forrest")[0]!.busy, true);
  const busy = await fetch(
    `${gh.url}/repos/octo/forrest/actions/runners/${runner.id}`,
    { method: "DELETE", headers: { authorization: await tokenFor(gh) } },
  );
  assert.equal(busy.status, 422);
  assert.match((await busy.json()).message, /still running a job/);

  assert.equal(
    (await standinCall(gh, "done?exit=0", runner.config)).status,
    200,
  );
  assert.deepEqual(
    [gh.job(job.id)?.status, gh.job(job.id)?.conclusion],
    ["completed", "success"],
  );
  assert.deepEqual(
    gh.runners("octo", "forrest").map((r) => r.name),
    ["vm-2"],
  );
  assert.equal((await standinCall(gh, "take", runner.config)).status, 404);
  assert.equal((await standinCall(gh, "online", "garbage")).status, 404);

  const expected = (action: string, status: string, runner: string | null) => ({
    signed: true,
    event: "workflow_job",
    action,
    id: job.id,
    status,
    conclusion: status === "completed" ? "success" : null,
    runner,
    repo: "octo/forrest",
    owner: "octo",
    installation: installationId,
  });
  assert.deepEqual(receiver.received.map(workflowJob), [
    expected("queued", "queued", null),
    expected("in_progress", "in_progress", "vm-1"),
    expected("completed", "completed", "vm-1"),
  ]);
  assert.deepEqual(gh.deliveries.map((d) => d.status), [200, 200, 200]);
});

/** Starts the rendered stand-in job.sh on the host, against the double. */
async function startStandin(
  gh: GitHubDouble,
  config: string,
  path: string,
  home: string,
): Promise<Deno.ChildProcess> {
  const template = renderTemplate(await readTemplate(STANDIN_TEMPLATE_DIR), {
    JITCONFIG: config,
    RUNNER_NAME: "vm-1",
  });
  const script = join(home, "job.sh");
  await Deno.writeTextFile(script, template.jobConfig.get("job.sh")!);
  return new Deno.Command("sh", {
    args: [script],
    clearEnv: true,
    env: { PATH: path, HOME: home, GITHUB_DOUBLE_URL: gh.url },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/**
 * A PATH with only what job.sh needs and no curl: busybox's applets when
 * busybox is installed (as in the busybox test guest), else the host's.
 */
async function pathWithoutCurl(dir: string): Promise<string | undefined> {
  const where = async (tool: string) => {
    const found = await new Deno.Command("sh", {
      args: ["-c", `command -v ${tool}`],
      stdout: "piped",
    }).output();
    return found.success
      ? new TextDecoder().decode(found.stdout).trim()
      : undefined;
  };
  const busybox = await where("busybox");
  for (const tool of STANDIN_TOOLS) {
    const target = busybox ?? await where(tool);
    if (target === undefined) return undefined;
    await Deno.symlink(target, join(dir, tool));
  }
  return dir;
}

const STANDIN_TOOLS = [
  "sh",
  "wget",
  "date",
  "sleep",
  "mktemp",
  "cat",
  "sed",
  "tail",
  "rm",
];

for (const client of ["curl", "wget"] as const) {
  Deno.test(`the stand-in job.sh runs a job's script (${client})`, async () => {
    await withTempDir(async (home) => {
      await Deno.mkdir(join(home, "config"));
      await Deno.mkdir(join(home, "bin"));
      const path = client === "curl"
        ? "/usr/local/bin:/usr/bin:/bin"
        : await pathWithoutCurl(join(home, "bin"));
      if (path === undefined) return; // no wget on this host
      await using gh = await start();
      gh.addRepo("octo", "forrest");
      const runner = await jitRunner(gh, "vm-1", ["self-hosted"]);
      await using child = await startStandin(gh, runner.config, path, home);
      // Queued only once the runner asks: it has to try again after a 204.
      await gh.waitFor(
        () => gh.runners("octo", "forrest")[0]?.status === "online",
        10_000,
        "the stand-in online",
      );
      const job = await gh.queueJob({
        owner: "octo",
        repo: "forrest",
        labels: ["self-hosted"],
        script: "echo token-123 >~/config/persist\necho from the job\nexit 3",
      });
      const out = await child.output();
      const output = new TextDecoder().decode(out.stdout) +
        new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, output);
      assert.match(output, /from the job/);
      assert.equal(
        await Deno.readTextFile(join(home, "config/persist")),
        "token-123\n",
      );
      assert.deepEqual(
        [gh.job(job.id)?.status, gh.job(job.id)?.conclusion],
        ["completed", "failure"],
      );
      assert.deepEqual(gh.runners("octo", "forrest"), []);
    });
  });
}
