/**
 * The GitHub forge at every scope against the GitHub double over real
 * HTTP (product.md §11): organization runners in a named group, the checks
 * of a group at start, enterprise runners with a token (and not with the
 * App), the repositories an organization's poll covers, and GitHub
 * Enterprise Server under /api/v3.
 */

import assert from "node:assert/strict";
import { generateAppKey, GitHubDouble } from "../../../tests/github/mod.ts";
import type { Scope } from "../../config/mod.ts";
import { Secret } from "../../log/mod.ts";
import { ForgeError, ForgeSetupError } from "../forge.ts";
import { GitHubForge } from "./github_forge.ts";

const APP_ID = 4242;
const KEY = await generateAppKey();
const PAT = "ghp_scopesTestToken0123456789abcdefABCDEF";
const ACME: Scope = { kind: "organization", org: "acme" };
const MEGACORP: Scope = { kind: "enterprise", enterprise: "megacorp" };
const LABELS = ["self-hosted", "forrest", "build"];

/**
 * plugin-throttling starts its rate-limit groups (with cleanup intervals
 * that live as long as the process) on the first request of the process:
 * make it here, outside any test, so the sanitizers see only the tests'.
 */
await withDouble({}, async (_, forge) => {
  await forge().listRunners(ACME);
});

async function withDouble(
  options: { description?: "ghec" | "ghes-3.19"; prefix?: string },
  body: (
    double: GitHubDouble,
    forge: (token?: boolean) => GitHubForge,
  ) => Promise<void>,
) {
  await using double = await GitHubDouble.start({
    appId: APP_ID,
    privateKeyPem: KEY,
    webhookSecret: "hush",
    description: options.description ?? "ghec",
    ...(options.prefix ? { prefix: options.prefix } : {}),
  });
  double.addEnterprise("megacorp");
  double.addOrg("acme", "megacorp");
  double.addRepo("acme", "app");
  double.addRepo("acme", "lib");
  double.addRepo("acme", "web");
  double.addToken(PAT);
  await body(double, (token = false) =>
    new GitHubForge({
      app: { appId: APP_ID, privateKey: new Secret(KEY) },
      ...(token ? { token: new Secret(PAT) } : {}),
      webhookSecret: new Secret("hush"),
      apiUrl: double.url,
      retries: 0,
    }));
}

Deno.test("GitHub forge: organization runners go to the named group, which is checked at start", async () => {
  await withDouble({}, async (double, forge) => {
    const ci = double.addRunnerGroup({ org: "acme" }, "Linux CI", [
      "app",
      "lib",
    ]);
    const github = forge();
    await github.connect([
      { scope: ACME, runnerGroups: ["Linux CI"], repositories: ["app", "LIB"] },
    ]);
    const runner = await github.registerRunner(
      ACME,
      "forrest-build-1",
      LABELS,
      "Linux CI",
    );
    assert.equal(double.runnersOf({ org: "acme" })[0]!.runnerGroupId, ci);
    assert.deepEqual(
      (await github.listRunners(ACME)).map((r) => r.name),
      ["forrest-build-1"],
    );
    await github.deleteRunner(ACME, runner.id);
    await github.deleteRunner(ACME, runner.id); // gone already: fine
    assert.deepEqual(double.runnersOf({ org: "acme" }), []);
    // The group was looked up once for both the check and the runner.
    const lookups = double.requests.filter((r) =>
      r.path === "/orgs/acme/actions/runner-groups"
    );
    assert.equal(lookups.length, 1);

    await assert.rejects(
      github.connect([{
        scope: ACME,
        runnerGroups: ["Linux CI"],
        repositories: ["web"],
      }]),
      (error) =>
        error instanceof ForgeSetupError &&
        /runner group "Linux CI" is not open to acme\/web/.test(error.message),
    );
    await assert.rejects(
      github.connect([
        { scope: ACME, runnerGroups: ["Linux CI"], repositories: undefined },
      ]),
      (error) =>
        error instanceof ForgeSetupError &&
        /"Linux CI" is open to selected repositories only: list them in \[organizations.acme\] repositories \(it selects app, lib\)/
          .test(error.message),
    );
    await assert.rejects(
      github.connect([{
        scope: ACME,
        runnerGroups: ["GPU"],
        repositories: undefined,
      }]),
      (error) =>
        error instanceof ForgeSetupError &&
        error.message ===
          'organization acme: runner group "GPU" does not exist in organization acme (it has "Default", "Linux CI")',
    );
    await assert.rejects(
      github.registerRunner(ACME, "forrest-build-2", LABELS, "GPU"),
      ForgeSetupError,
    );
    // Every repository of the organization, for the poller.
    assert.deepEqual(
      (await github.listRepositories("acme")).map((r) =>
        `${r.owner}/${r.repo}`
      ),
      ["acme/app", "acme/lib", "acme/web"],
    );
  });
});

Deno.test("GitHub forge: listRunners() shows only the runners in the groups of the scope's machines", async () => {
  await withDouble({}, async (double, forge) => {
    double.addRunnerGroup({ org: "acme" }, "host-a");
    double.addRunnerGroup({ org: "acme" }, "host-b");
    // Two Forrest hosts sharing the organization, one group each.
    const hostA = forge();
    const hostB = forge();
    await hostA.connect([
      {
        scope: ACME,
        runnerGroups: ["host-a"],
        repositories: undefined,
        defaultGroup: false,
      },
    ]);
    await hostB.connect([
      {
        scope: ACME,
        runnerGroups: ["host-b"],
        repositories: undefined,
        defaultGroup: true,
      },
    ]);
    await hostA.registerRunner(ACME, "forrest-build-a", LABELS, "host-a");
    await hostB.registerRunner(ACME, "forrest-build-b", LABELS, "host-b");
    await hostB.registerRunner(ACME, "forrest-build-d", LABELS, undefined);
    const names = async (github: GitHubForge) =>
      (await github.listRunners(ACME)).map((r) => r.name).sort();
    assert.deepEqual(await names(hostA), ["forrest-build-a"]);
    assert.deepEqual(await names(hostB), [
      "forrest-build-b",
      "forrest-build-d",
    ]);
    // Before connect() says, every runner of the scope is listed.
    assert.deepEqual(await names(forge()), [
      "forrest-build-a",
      "forrest-build-b",
      "forrest-build-d",
    ]);
  });
});

Deno.test("GitHub forge: enterprise runners need the token; GitHub refuses the App", async () => {
  await withDouble({}, async (double, forge) => {
    const group = double.addRunnerGroup(
      { enterprise: "megacorp" },
      "Enterprise CI",
    );
    await assert.rejects(
      forge().registerRunner(MEGACORP, "forrest-hil-1", LABELS, undefined),
      (error) =>
        error instanceof ForgeSetupError &&
        /needs \[github\] token_file \(GitHub Apps cannot register enterprise runners\)/
          .test(error.message),
    );
    const github = forge(true);
    await github.connect([
      {
        scope: MEGACORP,
        runnerGroups: ["Enterprise CI"],
        repositories: undefined,
      },
    ]);
    const runner = await github.registerRunner(
      MEGACORP,
      "forrest-hil-1",
      LABELS,
      "Enterprise CI",
    );
    assert.equal(
      double.runnersOf({ enterprise: "megacorp" })[0]!.runnerGroupId,
      group,
    );
    assert.deepEqual((await github.listRunners(MEGACORP)).map((r) => r.id), [
      runner.id,
    ]);
    await github.deleteRunner(MEGACORP, runner.id);
    assert.deepEqual(double.runnersOf({ enterprise: "megacorp" }), []);
    // With the token, organizations still use the App's installation.
    await github.registerRunner(ACME, "forrest-build-9", LABELS, undefined);
    const jit = double.requests.find((r) =>
      r.path === "/orgs/acme/actions/runners/generate-jitconfig"
    );
    assert.equal(jit?.status, 201);
    assert.ok(
      double.requests.some((r) => r.path === "/orgs/acme/installation"),
    );
  });
});

Deno.test("GitHub forge: a token alone serves repositories and organizations", async () => {
  await withDouble({}, async (double) => {
    const github = new GitHubForge({
      token: new Secret(PAT),
      webhookSecret: new Secret("hush"),
      apiUrl: double.url,
      retries: 0,
    });
    await github.connect([
      {
        scope: { kind: "repository", owner: "acme", repo: "app" },
        runnerGroups: [],
        repositories: undefined,
      },
      { scope: ACME, runnerGroups: [], repositories: undefined },
    ]);
    await github.registerRunner(
      { kind: "repository", owner: "acme", repo: "app" },
      "forrest-build-1",
      LABELS,
      undefined,
    );
    assert.equal(double.runners("acme", "app").length, 1);
    assert.ok(!double.requests.some((r) => r.path.includes("installation")));
  });
});

Deno.test("GitHub forge: GitHub Enterprise Server under /api/v3", async () => {
  await withDouble(
    { description: "ghes-3.19", prefix: "/api/v3" },
    async (double, forge) => {
      assert.match(double.url, /\/api\/v3$/);
      const github = forge(true);
      const repo = { kind: "repository", owner: "acme", repo: "app" } as const;
      await github.connect([
        { scope: repo, runnerGroups: [], repositories: undefined },
        { scope: MEGACORP, runnerGroups: [], repositories: undefined },
      ]);
      await github.registerRunner(repo, "forrest-build-1", LABELS, undefined);
      await github.registerRunner(MEGACORP, "forrest-hil-1", LABELS, undefined);
      const job = await double.queueJob({
        owner: "acme",
        repo: "app",
        labels: LABELS,
        webhook: false,
      });
      const jobs = await github.listActiveJobs(
        { owner: "acme", repo: "app" },
        new Date(0),
      );
      assert.deepEqual(jobs.map((j) => j.id), [job.id]);
      // Without the prefix there is no API: every call went through it.
      const bare = new GitHubForge({
        token: new Secret(PAT),
        webhookSecret: new Secret("hush"),
        apiUrl: double.url.replace(/\/api\/v3$/, ""),
        retries: 0,
      });
      await assert.rejects(bare.listRunners(repo), ForgeError);
    },
  );
});
