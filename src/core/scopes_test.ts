/**
 * Which scope a job goes to (product.md §11): the most specific with a
 * machine for it (repository, organization, enterprise), an organization's
 * `repositories` list, enterprises by the delivery's enterprise, GitHub's
 * default labels; and demand counted once per job across scopes.
 */

import assert from "node:assert/strict";
import { parseConfig, tripletName } from "../config/mod.ts";
import { Core, DEFAULT_CORE_OPTIONS } from "./core.ts";
import type { JobReport } from "./jobs.ts";
import { machineForJob, runnerLabels } from "./labels.ts";

const TOML = `
[host]
base_dir = "/srv/forrest"
ram = "64G"

[repositories.acme.app.machines.build]
base_image = "images/debian.img"

[organizations.acme]
repositories = ["app", "Lib"]
runner_group = "Linux CI"

[organizations.acme.machines.build]
base_image = "images/debian.img"

[organizations.acme.machines.docs]
base_image = "images/debian.img"
runner_group = "Docs"

[organizations.other.machines.generic]
base_image = "images/debian.img"
default_labels = true
labels = ["big"]

[enterprises.megacorp.machines.build]
base_image = "images/debian.img"

[enterprises.megacorp.machines.hil]
base_image = "images/debian.img"
`;

const config = parseConfig(TOML, { file: "forrest.toml", cwd: "/etc" });

Deno.test("scopes: a job goes to the most specific scope with a machine for it", () => {
  const cases: [
    string,
    string,
    string | undefined,
    string[],
    string | undefined,
  ][] = [
    // The repository's own machine wins over its organization's.
    ["acme", "app", undefined, ["self-hosted", "build"], "acme/app/build"],
    // The organization serves a listed repository (names ignore case)...
    ["acme", "lib", undefined, ["build"], "orgs/acme/build"],
    ["ACME", "app", undefined, ["docs"], "orgs/acme/docs"],
    // ...and not one its list leaves out, even in its enterprise.
    ["acme", "web", undefined, ["docs"], undefined],
    ["acme", "web", "megacorp", ["build"], "enterprises/megacorp/build"],
    // The enterprise only when the delivery names it.
    ["acme", "lib", "megacorp", ["hil"], "enterprises/megacorp/hil"],
    ["acme", "lib", undefined, ["hil"], undefined],
    ["acme", "lib", "MegaCorp", ["build"], "orgs/acme/build"],
    // GitHub's default labels: jobs that do not name the machine.
    [
      "other",
      "x",
      undefined,
      ["self-hosted", "linux", "x64"],
      "orgs/other/generic",
    ],
    [
      "other",
      "x",
      undefined,
      ["self-hosted", "Linux", "big"],
      "orgs/other/generic",
    ],
    ["other", "x", undefined, ["self-hosted", "linux", "arm64"], undefined],
    ["other", "x", undefined, ["self-hosted", "generic"], "orgs/other/generic"],
  ];
  for (const [owner, repo, enterprise, labels, want] of cases) {
    const found = machineForJob(
      config,
      { owner, repo, ...(enterprise ? { enterprise } : {}) },
      labels,
    );
    assert.equal(
      found && tripletName(found.triplet),
      want,
      `${owner}/${repo} (${enterprise}) ${labels}`,
    );
  }
});

Deno.test("scopes: runner groups come from the scope unless the machine names one; default labels are GitHub's", () => {
  const group = (name: string) =>
    config.scopes.flatMap((s) => s.machines).find((m) =>
      tripletName(m.triplet) === name
    )!;
  assert.equal(group("orgs/acme/build").runnerGroup, "Linux CI");
  assert.equal(group("orgs/acme/docs").runnerGroup, "Docs");
  assert.equal(group("acme/app/build").runnerGroup, undefined);
  assert.deepEqual(runnerLabels(group("orgs/other/generic")), [
    "self-hosted",
    "forrest",
    "generic",
    "Linux",
    "X64",
    "big",
  ]);
  assert.deepEqual(config.scopes[1]!.repositories, ["app", "lib"]);
});

Deno.test("scopes: a job counts once; a poll without the enterprise keeps what its webhook said", () => {
  const core = new Core(config, {
    ...DEFAULT_CORE_OPTIONS,
    debounce: 0,
    randomSuffix: () => "0000000000000001",
  });
  const report: JobReport = {
    id: 7,
    owner: "acme",
    repo: "web",
    status: "queued",
    labels: ["self-hosted", "forrest", "build"],
    runnerName: null,
    enterprise: "megacorp",
  };
  core.jobReported(report, 0);
  const { enterprise: _, ...polled } = report;
  core.pollFinished({ owner: "acme", repo: "web" }, [polled], 1, 2);
  const decisions = core.tick(10).filter((d) => d.kind === "register");
  assert.deepEqual(
    decisions.map((d) =>
      d.kind === "register" && tripletName(d.machine.triplet)
    ),
    ["enterprises/megacorp/build"],
  );
  assert.equal(core.status().jobs[0]!.triplet, "enterprises/megacorp/build");
});
