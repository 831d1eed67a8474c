/**
 * The config table: each case is a forrest.toml and either the exact
 * problems it must produce (file, line, key path, wording) or checks on the
 * Config it resolves to.
 */

import assert from "node:assert/strict";
import { ConfigError } from "./problem.ts";
import { parseConfig } from "./load.ts";
import {
  allMachines,
  type Config,
  type MachineConfig,
  tripletName,
} from "./types.ts";

const GiB = 1024 ** 3;

/** Four lines: problems in the cases below start on line 5. */
const HOST = `[host]
base_dir = "/srv/forrest"
ram = "16G"
cpus = 8
`;

function problems(toml: string): string[] {
  try {
    parseConfig(toml, { file: "forrest.toml", cwd: "/etc/forrest" });
  } catch (error) {
    if (error instanceof ConfigError) return error.lines;
    throw error;
  }
  assert.fail("expected problems, the config was accepted");
}

function config(toml: string): Config {
  return parseConfig(toml, { file: "forrest.toml", cwd: "/etc/forrest" });
}

function machine(toml: string, name: string): MachineConfig {
  const found = allMachines(config(toml)).find((m) =>
    m.triplet.machine === name
  );
  assert.ok(found, `machine ${name} not found`);
  return found;
}

interface BadCase {
  readonly name: string;
  readonly toml: string;
  readonly problems: readonly string[];
}

const BAD: readonly BadCase[] = [
  {
    name: "a TOML syntax error gives its line and column",
    toml: `[host]\nbase_dir = "/srv"\nram = 4G\n`,
    problems: [
      "forrest.toml:3:8: TOML syntax error: illegal character in numeric literal",
    ],
  },
  {
    name: "a missing [host] table",
    toml: `[server]\nlisten = ["127.0.0.1:8080"]\n`,
    problems: ["forrest.toml:1: host: required table [host] is missing"],
  },
  {
    name: "a missing required key is reported on its table's line",
    toml: `# comment\n[host]\nbase_dir = "/srv/forrest"\n`,
    problems: ["forrest.toml:2: host.ram: required key is missing"],
  },
  {
    name: "size 0G is rejected where a size must be positive",
    toml: `[host]\nbase_dir = "/srv"\nram = "0G"\n`,
    problems: ['forrest.toml:3: host.ram: must be more than 0, found "0G"'],
  },
  {
    name: "size -1G is negative",
    toml: `[host]\nbase_dir = "/srv"\nram = "-1G"\n`,
    problems: [
      'forrest.toml:3: host.ram: cannot parse size "-1G": it is negative',
    ],
  },
  {
    name: "size 4g needs an upper-case unit",
    toml: `${HOST}[snippets.s]\nram = "4g"\n`,
    problems: [
      'forrest.toml:6: snippets.s.ram: cannot parse size "4g": unit "g" must be upper case: write "4G"',
    ],
  },
  {
    name: "size 4GB is ambiguous",
    toml: `${HOST}[snippets.s]\ndisk = "4GB"\n`,
    problems: [
      'forrest.toml:6: snippets.s.disk: cannot parse size "4GB": unit "GB" is ambiguous: write "G" or "GiB" (powers of 1024)',
    ],
  },
  {
    name: "a size written as a bare integer",
    toml: `[host]\nbase_dir = "/srv"\nram = 4096\n`,
    problems: [
      'forrest.toml:3: host.ram: expected a size such as "4G", found 4096',
    ],
  },
  {
    name: "a size with a fraction of a byte",
    toml: `${HOST}[snippets.s]\nram = "0.3B"\n`,
    problems: [
      'forrest.toml:6: snippets.s.ram: cannot parse size "0.3B": it is not a whole number of bytes',
    ],
  },
  {
    name: "a duration without a unit, and one below the minimum",
    toml: `${HOST}[github]
app_id = 1
private_key_file = "key.pem"
webhook_secret_file = "secret"
polling_interval = "3s"
[snippets.s]
start_timeout = "15"
`,
    problems: [
      'forrest.toml:9: github.polling_interval: must be at least 5s, found "3s"',
      'forrest.toml:11: snippets.s.start_timeout: cannot parse duration "15": missing unit (use s, m, h or d)',
    ],
  },
  {
    name: "a quick poll interval below the minimum",
    toml: `${HOST}[github]
app_id = 1
private_key_file = "key.pem"
webhook_secret_file = "secret"
queued_polling_interval = "0s"
`,
    problems: [
      'forrest.toml:9: github.queued_polling_interval: must be at least 1s, found "0s"',
    ],
  },
  {
    name: "an unknown top-level key with a suggestion",
    toml: `${HOST}[repository.acme.app]\n`,
    problems: [
      'forrest.toml:5: repository: unknown key; did you mean "repositories"?',
    ],
  },
  {
    name: "an unknown key without a close match lists the known keys",
    toml: `[host]\nbase_dir = "/srv"\nram = "8G"\nflavour = "vanilla"\n`,
    problems: [
      "forrest.toml:4: host.flavour: unknown key (expected one of base_dir, ram, cpus, accel, clone, shutdown_timeout)",
    ],
  },
  {
    name: "a misspelt machine key",
    toml: `${HOST}[repositories.acme.app.machines.build]
base_image = "debian.img"
rma = "4G"
`,
    problems: [
      'forrest.toml:7: repositories.acme.app.machines.build.rma: unknown key; did you mean "ram"?',
    ],
  },
  {
    name: "misspelt keys in nested tables and arrays of tables",
    toml: `${HOST}[repositories.acme.app.machines.build]
base_image = "debian.img"
setup_template = { path = "tpl", paramters = { A = "1" } }
shared = [
  { path = "/srv/a", tag = "a", writeable = true },
]
`,
    problems: [
      'forrest.toml:7: repositories.acme.app.machines.build.setup_template.paramters: unknown key; did you mean "parameters"?',
      'forrest.toml:9: repositories.acme.app.machines.build.shared[0].writeable: unknown key; did you mean "writable"?',
    ],
  },
  {
    name: "keys of the original's YAML config, with what to write instead",
    toml: `${HOST}[machine_snippets.small]
cpus = 4
[github]
app_id = 1
jwt_key_file = "key.pem"
webhook_secret_file = "secret"
`,
    problems: [
      'forrest.toml:5: machine_snippets: unknown key; forrest\'s YAML "machine_snippets" anchors are [snippets.NAME] tables here, used with extends = [...]',
      "forrest.toml:7: github.private_key_file: required key is missing (a GitHub App needs app_id and private_key_file)",
      'forrest.toml:9: github.jwt_key_file: unknown key; forrest\'s YAML "jwt_key_file" is "private_key_file" here',
    ],
  },
  {
    name: "an enum value with a suggestion",
    toml: `[host]\nbase_dir = "/srv"\nram = "8G"\naccel = "kvn"\n`,
    problems: [
      'forrest.toml:4: host.accel: expected one of "auto", "kvm", "tcg", found "kvn"; did you mean "kvm"?',
    ],
  },
  {
    name: "use_base outside its values",
    toml: `${HOST}[snippets.s]\nuse_base = "sometimes"\n`,
    problems: [
      'forrest.toml:6: snippets.s.use_base: expected one of "if_newer", "always", "never", found "sometimes"',
    ],
  },
  {
    name: "wrong types: integer, array, table",
    toml: `${HOST}[snippets.s]
cpus = "4"
labels = "x86_64"
[snippets.t]
cpus = 0
[repositories]
acme = 3
`,
    problems: [
      'forrest.toml:6: snippets.s.cpus: expected an integer, found "4"',
      'forrest.toml:7: snippets.s.labels: expected an array, found "x86_64"',
      "forrest.toml:9: snippets.t.cpus: must be at least 1, found 0",
      "forrest.toml:11: repositories.acme: expected a table, found 3",
    ],
  },
  {
    name: "an unknown snippet in a machine, with a suggestion",
    toml: `${HOST}[snippets.small]
base_image = "debian.img"
[repositories.acme.app.machines.build]
extends = ["small", "larg"]
[snippets.large]
cpus = 4
`,
    problems: [
      'forrest.toml:8: repositories.acme.app.machines.build.extends[1]: unknown snippet "larg"; did you mean "large"?',
    ],
  },
  {
    name: "an unknown snippet inside a snippet is reported once",
    toml: `${HOST}[snippets.base]
extends = ["nowhere"]
[repositories.acme.app.machines.a]
extends = ["base"]
base_image = "x.img"
[repositories.acme.app.machines.b]
extends = ["base"]
base_image = "x.img"
`,
    problems: [
      'forrest.toml:6: snippets.base.extends[0]: unknown snippet "nowhere"',
    ],
  },
  {
    name: "snippets that extend each other in a loop",
    toml: `${HOST}[snippets.a]
extends = ["b"]
[snippets.b]
extends = ["a"]
`,
    problems: [
      "forrest.toml:8: snippets.b.extends[0]: snippets extend each other in a loop: a → b → a",
    ],
  },
  {
    name: "a base_machine that names no configured machine",
    toml: `${HOST}[repositories.acme.images.machines.debian-base]
base_image = "debian.img"
[repositories.acme.app.machines.build]
base_machine = "acme/images/debian-bsae"
`,
    problems: [
      'forrest.toml:8: repositories.acme.app.machines.build.base_machine: names no configured machine "acme/images/debian-bsae"; did you mean "acme/images/debian-base"?',
    ],
  },
  {
    name: "a base_machine that is not owner/repo/machine",
    toml: `${HOST}[repositories.acme.app.machines.build]
base_machine = "debian-base"
`,
    problems: [
      'forrest.toml:6: repositories.acme.app.machines.build.base_machine: expected "owner/repo/machine", "orgs/ORG/machine" or "enterprises/SLUG/machine", found "debian-base"',
    ],
  },
  {
    name: "a machine that is its own base",
    toml: `${HOST}[repositories.acme.app.machines.build]
base_machine = "acme/app/build"
`,
    problems: [
      "forrest.toml:6: repositories.acme.app.machines.build.base_machine: a machine cannot be its own base",
    ],
  },
  {
    name: "base machines in a loop",
    toml: `${HOST}[repositories.acme.app.machines.a]
base_machine = "acme/app/b"
[repositories.acme.app.machines.b]
base_machine = "acme/app/c"
[repositories.acme.app.machines.c]
base_machine = "acme/app/a"
`,
    problems: [
      "forrest.toml:6: repositories.acme.app.machines.a.base_machine: base machines form a loop: acme/app/a → acme/app/b → acme/app/c → acme/app/a",
    ],
  },
  {
    name: "a machine larger than the RAM budget",
    toml: `${HOST}[repositories.acme.app.machines.build]
base_image = "x.img"
ram = "32G"
`,
    problems: [
      "forrest.toml:7: repositories.acme.app.machines.build.ram: 32G is more than the host's RAM budget (host.ram = 16G)",
    ],
  },
  {
    name:
      "RAM over budget from a snippet is reported where the snippet sets it",
    toml: `${HOST}[snippets.huge]
ram = "64G"
[repositories.acme.app.machines.build]
extends = ["huge"]
base_image = "x.img"
`,
    problems: [
      "forrest.toml:6: snippets.huge.ram: 64G is more than the host's RAM budget (host.ram = 16G)",
    ],
  },
  {
    name:
      "a machine over the CPU budget, and the default RAM over a small budget",
    toml: `[host]
base_dir = "/srv"
ram = "2G"
cpus = 4
[repositories.acme.app.machines.build]
base_image = "x.img"
cpus = 6
`,
    problems: [
      "forrest.toml:5: repositories.acme.app.machines.build.ram: 4G (the default) is more than the host's RAM budget (host.ram = 2G)",
      "forrest.toml:7: repositories.acme.app.machines.build.cpus: 6 is more than the host's CPU budget (host.cpus = 4)",
    ],
  },
  {
    name: "both webhook secret keys",
    toml: `${HOST}[github]
app_id = 1
private_key_file = "key.pem"
webhook_secret = "abc"
webhook_secret_file = "secret"
`,
    problems: [
      "forrest.toml:8: github.webhook_secret: set webhook_secret or webhook_secret_file, not both",
    ],
  },
  {
    name: "no webhook secret and a bad API URL",
    toml: `${HOST}[github]
app_id = 1
private_key_file = "key.pem"
api_url = "github.example.com"
`,
    problems: [
      "forrest.toml:5: github: set webhook_secret_file (or webhook_secret) to the App's webhook secret",
      'forrest.toml:8: github.api_url: expected an http:// or https:// URL, found "github.example.com"',
    ],
  },
  {
    name:
      "owner, repository and machine names that GitHub (or a path) would refuse",
    toml: `${HOST}[repositories.-acme.app.machines.m]
base_image = "x.img"
[repositories.acme."..".machines.m]
base_image = "x.img"
[repositories.acme.app.machines."../../etc"]
base_image = "x.img"
`,
    problems: [
      'forrest.toml:5: repositories.-acme: "-acme" is not a valid GitHub owner name (1 to 39 letters, digits or single hyphens, not starting or ending with a hyphen)',
      'forrest.toml:7: repositories.acme."..": ".." is not a valid GitHub repository name (1 to 100 letters, digits, ".", "_" or "-", and not "." or "..")',
      'forrest.toml:9: repositories.acme.app.machines."../../etc": "../../etc" is not a valid machine name (1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit)',
    ],
  },
  {
    name: "the same repository and machine in two spellings",
    toml: `${HOST}[repositories.acme.app.machines.build]
base_image = "x.img"
[repositories.acme.app.machines.Build]
base_image = "x.img"
[repositories.ACME.app]
`,
    problems: [
      'forrest.toml:7: repositories.acme.app.machines.Build: machine "Build" is already configured as "build" (runner labels ignore case)',
      'forrest.toml:9: repositories.ACME.app: repository "ACME/app" is already configured as "acme/app" (repository names ignore case)',
    ],
  },
  {
    name: "Forgejo tables and scopes that cannot work",
    toml: `${HOST}[forgejo.github]
url = "https://x.example"
token_file = "t"
[forgejo.codeberg]
url = "codeberg.org"
[forgejo.Big]
url = "https://y.example"
token_file = "t"
[repositories.alice.app]
forge = "codeburg"
[repositories.bob.app]
package_token = true
[repositories.carol.app]
forge = "codeberg"
runner_group = "x"
[organizations.team]
forge = "codeberg"
package_token = true
[organizations.bad_name]
[enterprises.megacorp]
forge = "codeberg"
`,
    problems: [
      'forrest.toml:5: forgejo.github: "github" names GitHub in forge = "..."; call this Forgejo instance something else',
      "forrest.toml:8: forgejo.codeberg.token_file: required key is missing",
      'forrest.toml:9: forgejo.codeberg.url: expected the instance\'s address as an http:// or https:// URL, found "codeberg.org"',
      'forrest.toml:10: forgejo.Big: "Big" is not a valid forge name (1 to 32 lower-case letters, digits, "_" or "-", starting with a letter or digit)',
      'forrest.toml:14: repositories.alice.app.forge: there is no [forgejo.codeburg] table; did you mean "codeberg"?',
      'forrest.toml:16: repositories.bob.app.package_token: package tokens are made by Forgejo: set forge = "NAME" to a [forgejo.NAME] table, or leave package_token out',
      'forrest.toml:23: organizations.bad_name: "bad_name" is not a valid GitHub organization name (1 to 39 letters, digits or single hyphens, not starting or ending with a hyphen)',
      "forrest.toml:25: enterprises.megacorp.forge: unknown key (expected one of persistence_token, runner_group, machines)",
    ],
  },
  {
    name: "two package_token repositories with one CI user",
    toml: `${HOST}[forgejo.codeberg]
url = "https://codeberg.example"
token_file = "t"
[repositories.a-b.c]
forge = "codeberg"
package_token = true
[repositories.a.b-c]
forge = "codeberg"
package_token = true
`,
    problems: [
      'forrest.toml:13: repositories.a.b-c.package_token: repositories a-b/c and a/b-c would share the CI user "a-b-c-ci"; set package_token on one of them only',
    ],
  },
  {
    name:
      "scale sets: only with scale-set discovery, on GitHub, one per name and group",
    toml: `${HOST}[github]
token_file = "t"
discovery = "scale-set"
[forgejo.codeberg]
url = "https://codeberg.example"
token_file = "t"
[repositories.carol.app]
forge = "codeberg"
[repositories.carol.app.machines.m]
base_image = "x.img"
scale_set = "m"
[organizations.team.machines.a]
base_image = "x.img"
scale_set = "shared"
[organizations.team.machines.b]
base_image = "x.img"
scale_set = "shared"
[organizations.team.machines.c]
base_image = "x.img"
scale_set = "shared"
runner_group = "other"
[organizations.team.machines.d]
base_image = "x.img"
scale_set = "has space"
`,
    problems: [
      "forrest.toml:15: repositories.carol.app.machines.m.scale_set: Forgejo has no runner scale sets: leave scale_set out of Forgejo scopes",
      'forrest.toml:21: organizations.team.machines.b.scale_set: scale set "shared" is machine orgs/team/a\'s already, in the same runner group: give each machine type its own',
      'forrest.toml:28: organizations.team.machines.d.scale_set: expected a scale set name of 1 to 45 letters, digits, ".", "_" or "-", found "has space"',
    ],
  },
  {
    name: "scale_set without scale-set discovery; no webhook secret",
    toml: `${HOST}[github]
token_file = "t"
discovery = "webhooks"
[repositories.o.r.machines.m]
base_image = "x.img"
scale_set = "m"
`,
    problems: [
      "forrest.toml:5: github: set webhook_secret_file (or webhook_secret) to the App's webhook secret",
      'forrest.toml:7: github.discovery: expected one of "webhook", "scale-set", found "webhooks"; did you mean "webhook"?',
      'forrest.toml:10: repositories.o.r.machines.m.scale_set: scale_set names a runner scale set: set [github] discovery = "scale-set" to use them',
    ],
  },
  {
    name: "what Forgejo scopes may not have",
    toml: `${HOST}[forgejo.codeberg]
url = "https://codeberg.example"
token_file = "t"
[repositories.carol.app]
forge = "codeberg"
runner_group = "x"
[organizations.team]
forge = "codeberg"
package_token = true
[organizations.team.machines.m]
base_image = "x.img"
runner_group = "y"
[repositories."under_score".app]
forge = "codeberg"
`,
    problems: [
      "forrest.toml:10: repositories.carol.app.runner_group: Forgejo has no runner groups: leave runner_group out of Forgejo scopes",
      'forrest.toml:13: organizations.team.package_token: package tokens belong to a repository\'s CI user: set package_token on [repositories.OWNER.REPO] (forge = "NAME")',
      "forrest.toml:16: organizations.team.machines.m.runner_group: Forgejo has no runner groups: leave runner_group out of Forgejo scopes",
    ],
  },
  {
    name: "listen addresses that are neither unix:PATH nor HOST:PORT",
    toml: `${HOST}[server]
listen = ["unix:", "localhost", "127.0.0.1:70000"]
`,
    problems: [
      'forrest.toml:6: server.listen[0]: "unix:" names no socket path',
      'forrest.toml:6: server.listen[1]: expected "unix:PATH" or "HOST:PORT" (port 1 to 65535), found "localhost"',
      'forrest.toml:6: server.listen[2]: expected "unix:PATH" or "HOST:PORT" (port 1 to 65535), found "127.0.0.1:70000"',
    ],
  },
  {
    name: "template parameters that Forrest sets itself or cannot write",
    toml: `${HOST}[snippets.s.setup_template]
path = "tpl"
parameters = { JITCONFIG = "x", "A B" = "y", MIRROR = "http://deb" }
`,
    problems: [
      'forrest.toml:7: snippets.s.setup_template.parameters.JITCONFIG: parameter "JITCONFIG" is set by Forrest and cannot be overridden',
      'forrest.toml:7: snippets.s.setup_template.parameters."A B": parameter name "A B" may hold only letters, digits and "_" (it is written <A B> in templates)',
    ],
  },
  {
    name: "shared folders with a repeated and a bad tag",
    toml: `${HOST}[repositories.acme.app.machines.m]
base_image = "x.img"
shared = [
  { path = "/a", tag = "data" },
  { path = "/b", tag = "data" },
]
[repositories.acme.app.machines.n]
base_image = "x.img"
shared = [{ path = "/c", tag = "has space" }, { path = "/d", tag = ".." }]
`,
    problems: [
      'forrest.toml:9: repositories.acme.app.machines.m.shared[1].tag: tag "data" is used twice in this machine',
      'forrest.toml:13: repositories.acme.app.machines.n.shared[0].tag: expected a 9p mount tag of 1 to 31 letters, digits, ".", "_" or "-", not "." or "..", found "has space"',
      'forrest.toml:13: repositories.acme.app.machines.n.shared[1].tag: expected a 9p mount tag of 1 to 31 letters, digits, ".", "_" or "-", not "." or "..", found ".."',
    ],
  },
  {
    name: "a quoted repository name is quoted in the key path",
    toml: `${HOST}[repositories.acme."app.v2".machines.m]
base_image = "x.img"
labels = ["ok", ""]
`,
    problems: [
      'forrest.toml:7: repositories.acme."app.v2".machines.m.labels[1]: must not be empty',
    ],
  },
  {
    name:
      "a bad size, an unknown key, an unknown snippet and a dangling base_machine, all at once",
    toml: `[host]
base_dir = "/srv/forrest"
ram = "16Q"

[snippets.small]
cpus = 2

[repositories.acme.app.machines.build]
extends = ["smal"]
base_machine = "acme/images/debian-base"
cpu = 4
`,
    problems: [
      'forrest.toml:3: host.ram: cannot parse size "16Q": unknown unit "Q" (use B, K, M, G or T)',
      'forrest.toml:9: repositories.acme.app.machines.build.extends[0]: unknown snippet "smal"; did you mean "small"?',
      'forrest.toml:10: repositories.acme.app.machines.build.base_machine: names no configured machine "acme/images/debian-base"',
      'forrest.toml:11: repositories.acme.app.machines.build.cpu: unknown key; did you mean "cpus"?',
    ],
  },
];

for (const item of BAD) {
  Deno.test(`parseConfig() reports ${item.name}`, () => {
    assert.deepEqual(problems(item.toml), item.problems);
  });
}

Deno.test("parseConfig() accepts a minimal config and fills in defaults", () => {
  const c = config(`[host]\nbase_dir = "/srv/forrest"\nram = "16G"\n`);
  assert.equal(c.file, "/etc/forrest/forrest.toml");
  assert.deepEqual(c.host, {
    baseDir: "/srv/forrest",
    ram: 16 * GiB,
    cpus: undefined,
    accel: "auto",
    clone: "auto",
    shutdownTimeout: 600_000,
  });
  assert.deepEqual(c.server.listen, [
    { kind: "unix", path: "/srv/forrest/api.sock" },
  ]);
  assert.equal(c.github, undefined);
  assert.deepEqual(c.scopes, []);
});

Deno.test("parseConfig() gives machines their defaults", () => {
  const m = machine(
    `${HOST}[repositories.acme.app.machines.build]\nbase_image = "x.img"\n`,
    "build",
  );
  assert.deepEqual(m, {
    triplet: {
      scope: { kind: "repository" as const, owner: "acme", repo: "app" },
      machine: "build",
    },
    cpus: 2,
    ram: 4 * GiB,
    disk: undefined,
    baseImage: "/srv/forrest/x.img",
    baseMachine: undefined,
    forwards: [],
    useBase: "if_newer",
    network: "user",
    labels: [],
    defaultLabels: false,
    runnerGroup: undefined,
    setupTemplate: undefined,
    shared: [],
    networkInterfaces: [],
    artifacts: [],
    startTimeout: 15 * 60_000,
    minIdle: 0,
    scaleSet: undefined,
  });
});

Deno.test("parseConfig() accepts a machine without an image: it starts from its own", () => {
  const m = machine(
    `${HOST}[repositories.acme.app.machines.build]\ncpus = 2\n`,
    "build",
  );
  assert.equal(m.baseImage, undefined);
  assert.equal(m.baseMachine, undefined);
});

Deno.test("parseConfig() reads artifact stores, their defaults and their token as a secret", () => {
  const m = machine(
    `${HOST}[repositories.acme.app.machines.build]
base_image = "x.img"
artifacts = [
  { path = "/srv/artifacts/<RUNNER_NAME>", url = "https://ci.example.org/a/<RUNNER_NAME>", quota = "10G" },
  { name = "release", path = "release", url = "http://ci.example.org/r", quota = "1.5G", token = "store-token-value" },
]
`,
    "build",
  );
  assert.equal(m.artifacts.length, 2);
  assert.deepEqual({ ...m.artifacts[0]! }, {
    name: "artifact",
    path: "/srv/artifacts/<RUNNER_NAME>",
    url: "https://ci.example.org/a/<RUNNER_NAME>",
    quota: 10 * GiB,
    token: undefined,
  });
  const release = m.artifacts[1]!;
  assert.equal(release.name, "release");
  assert.equal(release.path, "/etc/forrest/release");
  assert.equal(release.quota, 1.5 * GiB);
  assert.equal(release.token?.reveal(), "store-token-value");
  assert.doesNotMatch(JSON.stringify(m), /store-token-value/);
  assert.deepEqual(
    problems(`${HOST}[repositories.acme.app.machines.build]
base_image = "x.img"
artifacts = [
  { name = "..", path = "/a", url = "ftp://x", quota = "0G" },
  { url = "https://x", quota = "1G", size = 3 },
]
`),
    [
      'forrest.toml:8: repositories.acme.app.machines.build.artifacts[0].name: expected a store name of 1 to 64 letters, digits, ".", "_" or "-" (the path segment after /artifact/), found ".."',
      'forrest.toml:8: repositories.acme.app.machines.build.artifacts[0].url: expected the store\'s public http:// or https:// URL, found "ftp://x"',
      'forrest.toml:8: repositories.acme.app.machines.build.artifacts[0].quota: must be more than 0, found "0G"',
      "forrest.toml:9: repositories.acme.app.machines.build.artifacts[1].path: required key is missing",
      "forrest.toml:9: repositories.acme.app.machines.build.artifacts[1].size: unknown key (expected one of name, path, url, quota, token)",
    ],
  );
});

Deno.test("parseConfig() merges extends in order, then the machine's own keys", () => {
  const m = machine(
    `${HOST}[snippets.a]
cpus = 1
ram = "1G"
disk = "10G"
labels = ["from-a"]
[snippets.b]
cpus = 3
ram = "2G"
[repositories.acme.app.machines.build]
extends = ["a", "b"]
base_image = "x.img"
ram = "3G"
`,
    "build",
  );
  assert.equal(m.cpus, 3); // b after a
  assert.equal(m.ram, 3 * GiB); // own key last
  assert.equal(m.disk, 10 * GiB); // only a sets it
  assert.deepEqual(m.labels, ["from-a"]);
});

Deno.test("parseConfig() resolves extends recursively and merges tables key by key", () => {
  const m = machine(
    `${HOST}[snippets.debian]
base_image = "debian.img"
setup_template = { path = "templates/debian", parameters = { MIRROR = "a", PROXY = "p" } }
[snippets.debian-large]
extends = ["debian"]
cpus = 8
labels = ["big"]
[repositories.acme.app.machines.build]
extends = ["debian-large"]
labels = ["x86_64"]
setup_template = { parameters = { MIRROR = "b" } }
`,
    "build",
  );
  assert.equal(m.cpus, 8);
  assert.equal(m.baseImage, "/srv/forrest/debian.img");
  // Arrays are replaced whole; tables merge key by key.
  assert.deepEqual(m.labels, ["x86_64"]);
  assert.deepEqual(m.setupTemplate, {
    path: "/etc/forrest/templates/debian",
    parameters: { MIRROR: "b", PROXY: "p" },
  });
});

Deno.test("parseConfig() resolves relative paths as documented", () => {
  const c = config(`[host]
base_dir = "state"
ram = "8G"
[server]
listen = ["unix:sock/api.sock", "unix:/run/forrest.sock", "[::1]:8080", "0.0.0.0:9000"]
[github]
app_id = 7
private_key_file = "keys/app.pem"
webhook_secret_file = "/etc/secret"
api_url = "https://ghe.example.com/api/v3/"
[repositories.acme.app.machines.build]
base_image = "images/debian.img"
setup_template = { path = "tpl" }
shared = [{ path = "cache", tag = "cache", writable = true }]
[repositories.acme.app.machines.abs]
base_image = "/data/abs.img"
`);
  assert.equal(c.host.baseDir, "/etc/forrest/state");
  assert.deepEqual(c.server.listen, [
    { kind: "unix", path: "/etc/forrest/state/sock/api.sock" },
    { kind: "unix", path: "/run/forrest.sock" },
    { kind: "tcp", hostname: "::1", port: 8080 },
    { kind: "tcp", hostname: "0.0.0.0", port: 9000 },
  ]);
  assert.equal(c.github?.app?.privateKeyFile, "/etc/forrest/keys/app.pem");
  assert.deepEqual(c.github?.webhookSecret, {
    kind: "file",
    path: "/etc/secret",
  });
  assert.equal(c.github?.apiUrl, "https://ghe.example.com/api/v3");
  const [build, abs] = allMachines(c);
  assert.equal(build?.baseImage, "/etc/forrest/state/images/debian.img");
  assert.equal(build?.setupTemplate?.path, "/etc/forrest/tpl");
  assert.deepEqual(build?.shared, [
    { path: "/etc/forrest/cache", tag: "cache", writable: true },
  ]);
  assert.equal(abs?.baseImage, "/data/abs.img");
});

Deno.test("parseConfig() accepts 1.5G and 4GiB", () => {
  const c = config(
    `[host]\nbase_dir = "/srv"\nram = "1.5G"\n[snippets.s]\nram = "4GiB"\n`,
  );
  assert.equal(c.host.ram, 1.5 * GiB);
});

Deno.test("parseConfig() keeps secrets out of printed configs", () => {
  const c = config(`${HOST}[github]
app_id = 1
private_key_file = "key.pem"
webhook_secret = "hook-secret-value"
[repositories.acme.app]
persistence_token = "persist-token-value"
`);
  const secret = c.github?.webhookSecret;
  assert.equal(
    secret?.kind === "inline" && secret.value.reveal(),
    "hook-secret-value",
  );
  assert.equal(
    c.scopes[0]?.persistenceToken?.reveal(),
    "persist-token-value",
  );
  const printed = JSON.stringify(c) + Deno.inspect(c, { depth: 10 });
  assert.doesNotMatch(printed, /hook-secret-value|persist-token-value/);
});

Deno.test("parseConfig() returns a deeply frozen config", () => {
  const c = config(
    `${HOST}[repositories.acme.app.machines.m]\nbase_image = "x.img"\nlabels = ["a"]\n`,
  );
  assert.throws(() => {
    (c.host as { ram: number }).ram = 1;
  }, TypeError);
  assert.throws(() => {
    (allMachines(c)[0]!.labels as string[]).push("b");
  }, TypeError);
});

Deno.test("parseConfig() accepts the shipped example", async () => {
  const text = await Deno.readTextFile(
    new URL("../../forrest.toml.example", import.meta.url),
  );
  const c = config(text);
  const names = allMachines(c).map((m) => tripletName(m.triplet));
  assert.deepEqual(names, [
    "acme/platform-images/debian-base",
    "acme/firmware/build",
    "acme/firmware/hil",
  ]);
  const build = allMachines(c)[1]!;
  assert.deepEqual(build.baseMachine, {
    scope: { kind: "repository", owner: "acme", repo: "platform-images" },
    machine: "debian-base",
  });
});

Deno.test("parseConfig() reads queued_polling_interval, 30s by default", () => {
  const github = (line: string) =>
    config(`${HOST}[github]
app_id = 1
private_key_file = "key.pem"
webhook_secret = "s"
${line}
`).github;
  assert.equal(github("")?.queuedPollingInterval, 30_000);
  assert.equal(
    github('queued_polling_interval = "10s"')?.queuedPollingInterval,
    10_000,
  );
});

Deno.test("parseConfig() reads forwards, socket_mode and janitor_interval", () => {
  const cfg = config(`${HOST}[server]
socket_mode = "0600"
[github]
app_id = 1
private_key_file = "key.pem"
webhook_secret = "s"
janitor_interval = "30s"
[repositories.acme.app.machines.build]
base_image = "x.img"
forwards = [{ port = 80, to = "127.0.0.1:8080" }]
`);
  assert.equal(cfg.server.socketMode, 0o600);
  assert.equal(cfg.github?.janitorInterval, 30_000);
  assert.deepEqual(allMachines(cfg)[0]!.forwards, [
    { guestPort: 80, hostAddress: "127.0.0.1", hostPort: 8080 },
  ]);
  assert.equal(config(HOST).server.socketMode, 0o660);
  assert.deepEqual(
    problems(`${HOST}[server]
socket_mode = "rw"
[repositories.acme.app.machines.build]
base_image = "x.img"
forwards = [{ port = 0, to = "localhost" }]
`),
    [
      'forrest.toml:6: server.socket_mode: expected an octal file mode such as "0660", found "rw"',
      "forrest.toml:9: repositories.acme.app.machines.build.forwards[0].port: must be at least 1, found 0",
      'forrest.toml:9: repositories.acme.app.machines.build.forwards[0].to: expected HOST:PORT (for example "127.0.0.1:3128"), found "localhost"',
    ],
  );
});

Deno.test("parseConfig() reads network_interfaces and names a bad one", () => {
  const m = machine(
    `${HOST}[repositories.acme.app.machines.hil]
base_image = "x.img"
network_interfaces = [{ type = "vde", path = "/run/vde/lab.ctl" }, { type = "vde", path = "lab2" }]
`,
    "hil",
  );
  assert.deepEqual(m.networkInterfaces, [
    { type: "vde", path: "/run/vde/lab.ctl" },
    { type: "vde", path: "/etc/forrest/lab2" },
  ]);
  assert.deepEqual(
    problems(`${HOST}[repositories.acme.app.machines.hil]
base_image = "x.img"
network_interfaces = [{ type = "tap", path = "tap0" }, { type = "vde" }, { type = "vde", path = "x", mac = "02:00:00:00:00:01" }]
`),
    [
      'forrest.toml:7: repositories.acme.app.machines.hil.network_interfaces[0].type: expected type = "vde" (the only kind of extra network card), found "tap"',
      "forrest.toml:7: repositories.acme.app.machines.hil.network_interfaces[1].path: required key is missing",
      "forrest.toml:7: repositories.acme.app.machines.hil.network_interfaces[2].mac: unknown key (expected one of type, path)",
    ],
  );
});

Deno.test("parseConfig() keeps artifact stores apart from writable shared folders", () => {
  const toml = (shared: string, store: string) =>
    `${HOST}[repositories.acme.app.machines.hil]
base_image = "x.img"
shared = [${shared}]
artifacts = [{ path = "${store}", url = "https://ci.example.org/", quota = "1G" }]
`;
  assert.deepEqual(
    problems(toml(
      '{ path = "/srv/cache", tag = "cache", writable = true }',
      "/srv/cache/uploads/<RUNNER_NAME>",
    )),
    [
      "forrest.toml:8: repositories.acme.app.machines.hil.artifacts[0].path: the artifact store /srv/cache/uploads/<RUNNER_NAME> overlaps /srv/cache, a writable shared folder of acme/app/hil: a job could redirect uploads through links there; keep them apart",
    ],
  );
  assert.equal(
    problems(toml(
      '{ path = "/srv/store/a", tag = "a", writable = true }',
      "/srv/store/<RUNNER_NAME>",
    )).length,
    1,
    "a share inside the store's shared folder",
  );
  // Another machine's writable share counts as much.
  assert.deepEqual(
    problems(`${HOST}[repositories.acme.app.machines.a]
base_image = "x.img"
artifacts = [{ path = "/data/up", url = "https://ci.example.org/", quota = "1G" }]
[repositories.acme.other.machines.b]
base_image = "x.img"
shared = [{ path = "/data", tag = "all", writable = true }]
`),
    [
      "forrest.toml:7: repositories.acme.app.machines.a.artifacts[0].path: the artifact store /data/up overlaps /data, a writable shared folder of acme/other/b: a job could redirect uploads through links there; keep them apart",
    ],
  );
  // No share, read-only or not, reaches into base_dir (/srv/forrest).
  assert.deepEqual(
    problems(toml(
      '{ path = "/srv/forrest/machines", tag = "m" }',
      "/data/uploads",
    )),
    [
      "forrest.toml:7: repositories.acme.app.machines.hil.shared[0].path: /srv/forrest/machines overlaps Forrest's base_dir /srv/forrest: jobs would see machine images and TPM keys; share a folder outside it",
    ],
  );
  // Read-only shares and separate folders are fine.
  config(toml(
    '{ path = "/srv/cache", tag = "cache" }',
    "/srv/cache/uploads",
  ));
  config(toml(
    '{ path = "/srv/cache", tag = "cache", writable = true }',
    "/srv/cache-uploads/<RUNNER_NAME>",
  ));
});

Deno.test("parseConfig() keeps forwards on the host's loopback, each guest port once", () => {
  assert.deepEqual(
    problems(`${HOST}[repositories.acme.app.machines.build]
base_image = "x.img"
forwards = [
  { port = 80, to = "127.0.0.1:3142" },
  { port = 80, to = "localhost:3143" },
  { port = 443, to = "10.1.2.3:443" },
  { port = 8080, to = "127.0.0.1:8080" },
]
`),
    [
      "forrest.toml:9: repositories.acme.app.machines.build.forwards[1].port: guest port 80 is forwarded twice in this machine",
      'forrest.toml:10: repositories.acme.app.machines.build.forwards[2].to: a forward reaches the host\'s loopback: use "127.0.0.1:PORT" (found "10.1.2.3:443"; to reach another machine, run a proxy on the host\'s 127.0.0.1 and forward to it)',
      "forrest.toml:11: repositories.acme.app.machines.build.forwards[3].port: guest port 8080 at 10.0.2.100 is Forrest's guest API (FORREST_API_URL): pick another port",
    ],
  );
  // The old network, by name, keeps qemu's guestfwd, which goes anywhere.
  const open = machine(
    `${HOST}[repositories.acme.app.machines.build]
base_image = "x.img"
network = "unsafe-host"
forwards = [{ port = 443, to = "10.1.2.3:443" }]
`,
    "build",
  );
  assert.equal(open.network, "unsafe-host");
  assert.deepEqual(open.forwards, [
    { guestPort: 443, hostAddress: "10.1.2.3", hostPort: 443 },
  ]);
});

Deno.test("parseConfig() accepts the longest names GitHub and Forrest allow", () => {
  const owner = "o".repeat(39);
  const repo = "r".repeat(100);
  const name = "m".repeat(64);
  const c = config(`[host]
base_dir = "/srv/${"d".repeat(60)}"
ram = "16G"
[repositories.${owner}.${repo}.machines.${name}]
base_image = "x.img"
`);
  assert.deepEqual(allMachines(c)[0]!.triplet, {
    scope: { kind: "repository", owner, repo },
    machine: name,
  });
});

Deno.test("parseConfig() refuses a base_dir too long for the runs' sockets", () => {
  const baseDir = `/srv/${"d".repeat(61)}`; // 66 bytes, one too many
  assert.deepEqual(
    problems(`[host]
base_dir = "${baseDir}"
ram = "16G"
[repositories.acme.app.machines.build]
base_image = "x.img"
`),
    [
      `forrest.toml:2: host.base_dir: "${baseDir}" is 66 bytes long, too long for the Unix sockets of the runs below it (at most 65 bytes, as Linux limits socket paths to 107): choose a shorter base_dir`,
    ],
  );
});

Deno.test("parseConfig() reports mistakes in the scope keys with their line", () => {
  assert.deepEqual(
    problems(`${HOST}
[github]
webhook_secret = "s"

[repositories.orgs.app.machines.m]
base_image = "x.img"

[repositories.acme.app]
runner_group = "CI"

[repositories.acme.app.machines.m]
base_image = "x.img"
runner_group = "CI"

[organizations.acme]
repositories = ["acme/app", "lib", "LIB"]
runer_group = "CI"

[organizations.acme.machines.m]
base_image = "x.img"
base_machine = "enterprises/megacorp/nope"
default_labels = "yes"

[organizations."-bad"]

[enterprises.megacorp.machines.m]
base_image = "x.img"
`),
    [
      "forrest.toml:6: github: set app_id and private_key_file (a GitHub App), or token_file (a personal access token)",
      'forrest.toml:9: repositories.orgs: "orgs" is not a GitHub account (GitHub reserves the name); use [organizations.NAME] for runners of a whole organization or enterprise',
      "forrest.toml:13: repositories.acme.app.runner_group: runner groups belong to organizations and enterprises; a repository's runners are always in its default group (configure the machine under [organizations.OWNER] to use a group)",
      "forrest.toml:17: repositories.acme.app.machines.m.runner_group: runner groups belong to organizations and enterprises; a repository's runners are always in its default group (configure the machine under [organizations.OWNER] to use a group)",
      'forrest.toml:20: organizations.acme.repositories[0]: "acme/app": write the repository\'s name only, without its owner',
      'forrest.toml:20: organizations.acme.repositories[2]: repository "LIB" is listed twice',
      'forrest.toml:21: organizations.acme.runer_group: unknown key; did you mean "runner_group"?',
      'forrest.toml:25: organizations.acme.machines.m.base_machine: names no configured machine "enterprises/megacorp/nope"; did you mean "enterprises/megacorp/m"?',
      'forrest.toml:26: organizations.acme.machines.m.default_labels: expected true or false, found "yes"',
      'forrest.toml:28: organizations.-bad: "-bad" is not a valid GitHub organization name (1 to 39 letters, digits or single hyphens, not starting or ending with a hyphen)',
      "forrest.toml:30: enterprises.megacorp: enterprise runners need a token: set [github] token_file to a classic personal access token with the manage_runners:enterprise scope (GitHub Apps cannot register enterprise runners)",
    ],
  );
});

Deno.test("parseConfig() reads all three scopes; base_machine names any of them", () => {
  const c = config(`${HOST}
[github]
token_file = "/etc/forrest/token"
webhook_secret = "s"

[repositories.acme.app.machines.test]
base_machine = "orgs/acme/base"

[organizations.acme]
persistence_token = "org-token"
runner_group = "Linux CI"

[organizations.acme.machines.base]
base_machine = "enterprises/megacorp/golden"

[enterprises.megacorp.machines.golden]
base_image = "x.img"
runner_group = "Enterprise"
`);
  assert.equal(c.github?.app, undefined);
  assert.equal(c.github?.tokenFile, "/etc/forrest/token");
  assert.deepEqual(allMachines(c).map((m) => tripletName(m.triplet)), [
    "acme/app/test",
    "orgs/acme/base",
    "enterprises/megacorp/golden",
  ]);
  const [test, base, golden] = allMachines(c);
  assert.deepEqual(test!.baseMachine, {
    scope: { kind: "organization", org: "acme" },
    machine: "base",
  });
  assert.deepEqual(base!.baseMachine, {
    scope: { kind: "enterprise", enterprise: "megacorp" },
    machine: "golden",
  });
  assert.equal(base!.runnerGroup, "Linux CI");
  assert.equal(golden!.runnerGroup, "Enterprise");
  assert.equal(c.scopes[1]!.persistenceToken?.reveal(), "org-token");
  assert.equal(c.scopes[1]!.repositories, undefined);
});

Deno.test("parseConfig() spells a base_machine as its machine is spelled", () => {
  const c = config(`${HOST}
[organizations.Acme.machines.Base]
base_image = "x.img"

[repositories.acme.app.machines.test]
base_machine = "ORGS/acme/base"
`);
  assert.equal(
    tripletName(allMachines(c)[0]!.baseMachine!),
    "orgs/Acme/Base",
  );
});

Deno.test("parseConfig() reads Forgejo instances and the scopes that use them", () => {
  const c = config(`${HOST}[forgejo.codeberg]
url = "https://codeberg.example/"
token_file = "codeberg.token"
polling_interval = "30s"

[repositories.alice.app]
forge = "codeberg"
package_token = true
[repositories.alice.app.machines.build]
base_image = "x.img"

[repositories.alice.site]
forge = "github"
[repositories.alice.site.machines.build]
base_image = "x.img"
`);
  assert.equal(c.github, undefined);
  assert.deepEqual(c.forgejo, [{
    name: "codeberg",
    url: "https://codeberg.example",
    guestUrl: "https://codeberg.example",
    tokenFile: "/etc/forrest/codeberg.token",
    pollingInterval: 30_000,
    janitorInterval: 300_000,
    requestTimeout: 30_000,
  }]);
  assert.deepEqual(c.scopes.map((s) => [s.scope, s.packageToken]), [
    [
      { kind: "repository", owner: "alice", repo: "app", forge: "codeberg" },
      true,
    ],
    [{ kind: "repository", owner: "alice", repo: "site" }, false],
  ]);
  assert.equal(
    tripletName(c.scopes[0]!.machines[0]!.triplet),
    "codeberg:alice/app/build",
  );
});
