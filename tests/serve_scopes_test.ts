/**
 * GitHub at every scope through `forrest serve`, end to end under TCG
 * (product.md §11): an organization's machine in a named runner group runs
 * a job of one of the organization's repositories and persists with the
 * organization's token; an enterprise machine registers its runner at
 * /enterprises/… with a personal access token (GitHub Apps cannot); a job
 * whose organization webhook was lost is found by the poller.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { testDebianImage } from "./debian_image.ts";
import { runForrest } from "./cli.ts";
import { generateAppKey, GitHubDouble } from "./github/mod.ts";
import { standinMachineToml, withServe } from "./serve.ts";
import { withTempDir } from "./temp.ts";

const JOB_TIMEOUT = 240_000;
const ORG_TOKEN = "org-persist-token-0123456789";
const PAT = "ghp_forrestTestToken0123456789abcdefABCD";

Deno.test({
  name:
    "serve: organization and enterprise machines run jobs through their own endpoints; the poller finds an organization's job",
  sanitizeResources: true,
  async fn() {
    const image = await testDebianImage();
    let groupId = 0;
    // The double's own port is the guests' forward: the same for all.
    const machine = (port: string) => standinMachineToml(image, port);
    let extraToml = "";
    await withServe({
      image,
      github: "ghec",
      token: PAT,
      pollingInterval: "5s",
      hostRam: "3G",
      setup: (double) => {
        double.addEnterprise("megacorp");
        double.addOrg("acme", "megacorp");
        double.addRepo("acme", "app");
        double.addRepo("acme", "lib");
        groupId = double.addRunnerGroup({ org: "acme" }, "Linux CI", [
          "app",
          "lib",
        ]);
        double.addToken(PAT);
        const port = new URL(double.url).port;
        extraToml = `
[organizations.acme]
persistence_token = "${ORG_TOKEN}"
runner_group = "Linux CI"
repositories = ["app", "lib"]

[organizations.acme.machines.orgbox]
${machine(port)}
[enterprises.megacorp.machines.entbox]
${machine(port)}`;
      },
      get extraToml() {
        return extraToml;
      },
    }, async (s) => {
      // 1. An organization webhook: JIT at /orgs/acme in "Linux CI".
      const job = await s.double.queueJob({
        owner: "acme",
        repo: "app",
        labels: ["self-hosted", "forrest", "orgbox"],
        script: `echo ${ORG_TOKEN} > ~/config/persist`,
      });
      await s.double.waitFor(
        () => s.double.runnersOf({ org: "acme" }).length > 0,
        30_000,
        "an organization runner",
      );
      const runner = s.double.runnersOf({ org: "acme" })[0]!;
      assert.equal(runner.runnerGroupId, groupId, "in the named group");
      assert.deepEqual(s.double.runners("acme", "app"), [], "not a repo's");
      await s.double.waitFor(
        () => s.double.job(job.id)?.status === "completed",
        JOB_TIMEOUT,
        "the organization's job completed",
      );
      assert.equal(s.double.job(job.id)!.conclusion, "success");
      assert.equal(s.double.job(job.id)!.runnerGroupName, "Linux CI");
      await s.waitForLog("persisted its disk");
      await Deno.stat(join(s.baseDir, "machines/orgs/acme/orgbox.img"));
      await s.double.waitFor(
        () => s.double.runnersOf({ org: "acme" }).length === 0,
        60_000,
        "the organization runner deleted",
      );

      // 2. An enterprise job (its delivery names the enterprise), and an
      // organization job whose webhook is lost, at once.
      const enterpriseJob = await s.double.queueJob({
        owner: "acme",
        repo: "lib",
        labels: ["self-hosted", "forrest", "entbox"],
      });
      const lost = await s.double.queueJob({
        owner: "acme",
        repo: "lib",
        labels: ["self-hosted", "forrest", "orgbox"],
        webhook: false,
      });
      await s.double.waitFor(
        () =>
          [enterpriseJob, lost].every((j) =>
            s.double.job(j.id)?.status === "completed"
          ),
        JOB_TIMEOUT,
        "the enterprise job and the lost job completed",
      );
      assert.match(
        s.double.job(enterpriseJob.id)!.runnerName!,
        /^forrest-entbox-/,
      );
      assert.match(s.double.job(lost.id)!.runnerName!, /^forrest-orgbox-/);
      await s.waitForLog(
        `Job ${lost.id} of "acme"/"lib": "queued", "found" by the poller`,
      );
      const registered = (path: string) =>
        s.double.requests.some((r) =>
          r.method === "POST" && r.path === path && r.status === 201
        );
      assert.ok(
        registered("/enterprises/megacorp/actions/runners/generate-jitconfig"),
      );
      assert.ok(registered("/orgs/acme/actions/runners/generate-jitconfig"));
      await s.waitForStatus(
        (st) => st.machines.length === 0,
        60_000,
        "every machine gone",
      );
      assert.deepEqual(s.double.runnersOf({ enterprise: "megacorp" }), []);
      // The token is a secret like the App's key.
      assert.doesNotMatch(s.log(), new RegExp(PAT));
      assert.doesNotMatch(JSON.stringify(await s.status()), new RegExp(PAT));
      const metrics = await (await s.fetch("/metrics")).text();
      assert.match(metrics, /orgs\/acme\/orgbox|forrest_/);
      assert.doesNotMatch(metrics, new RegExp(PAT));
    });
  },
});

Deno.test("serve: a runner group that does not exist stops serve at start with exit code 2", async () => {
  await withTempDir(async (dir) => {
    const key = await generateAppKey();
    await using double = await GitHubDouble.start({
      appId: 7,
      privateKeyPem: key,
      webhookSecret: "hush",
    });
    double.addOrg("acme");
    double.addRepo("acme", "app");
    double.addRunnerGroup({ org: "acme" }, "Linux CI");
    await Deno.writeTextFile(join(dir, "app.pem"), key);
    await Deno.mkdir(join(dir, "base"));
    await Deno.writeTextFile(
      join(dir, "forrest.toml"),
      `[host]
base_dir = "${dir}/base"
ram = "8G"

[github]
app_id = 7
private_key_file = "app.pem"
webhook_secret = "hush"
api_url = "${double.url}"

[organizations.acme.machines.build]
base_image = "x.img"
runner_group = "Linux-CI"
`,
    );
    const result = await runForrest(["serve", "--config", "forrest.toml"], {
      cwd: dir,
    });
    assert.equal(result.code, 2, result.stderr);
    assert.match(
      result.stderr,
      /GitHub: organization acme: runner group "Linux-CI" does not exist in organization acme \(it has "Default", "Linux CI"\)/,
    );
    assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  });
});
