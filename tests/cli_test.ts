import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT, runForrest, withTempDir } from "./cli.ts";
import meta from "../deno.json" with { type: "json" };

/** A line like "    at foo (file:///x.ts:1:2)" means a stack trace leaked. */
const STACK_LINE = /^\s+at .*:\d+:\d+\)?$/m;

const VALID = `[host]
base_dir = "/srv/forrest"
ram = "8G"
[repositories.acme.app.machines.build]
base_image = "images/debian.img"
`;

Deno.test("forrest --help lists the commands and exits 0", async () => {
  const result = await runForrest(["--help"]);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^Usage: forrest \[options\] \[command\]/);
  const commands = result.stdout.split("Commands:\n")[1]!.split("\n")
    .map((line) => /^ {2}(\S+)/.exec(line)?.[1]).filter(Boolean);
  assert.deepEqual(commands, [
    "version",
    "config",
    "exec",
    "image",
    "tpm",
    "shell",
    "serve",
    "status",
  ]);
  assert.equal(result.stderr, "");
});

Deno.test("forrest without a command shows help on stderr and exits 2", async () => {
  const result = await runForrest([]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.match(result.stderr, /^Usage: forrest/);
});

Deno.test("forrest version and --version print the version", async () => {
  for (const args of [["version"], ["--version"]]) {
    const result = await runForrest(args);
    assert.equal(result.code, 0);
    assert.match(
      result.stdout,
      new RegExp(
        `^forrest ${
          meta.version.replaceAll(".", "\\.")
        } \\(deno 2\\.9\\.\\d+, x86_64-`,
      ),
    );
  }
});

Deno.test("forrest config check prints the example's machines", async () => {
  const result = await runForrest(["config", "check", "forrest.toml.example"]);
  assert.equal(result.stderr, "");
  assert.equal(result.code, 0);
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(
    lines[0],
    "forrest.toml.example: OK, 3 machines in 2 repositories",
  );
  assert.ok(lines.includes("  budget    48G RAM, 16 CPUs"));
  const table = lines.slice(lines.findIndex((l) => l.startsWith("MACHINE")));
  assert.deepEqual(table.map((line) => line.split(/\s{2,}/)), [
    ["MACHINE", "CPUS", "RAM", "DISK", "IMAGE SOURCE", "USE_BASE"],
    [
      "acme/platform-images/debian-base",
      "2",
      "4G",
      "20G",
      "image /var/lib/forrest/images/debian-bookworm.img",
      "always",
    ],
    [
      "acme/firmware/build",
      "8",
      "16G",
      "100G",
      "machine acme/platform-images/debian-base",
      "if_newer",
    ],
    [
      "acme/firmware/hil",
      "2",
      "4G",
      "20G",
      "machine acme/platform-images/debian-base",
      "if_newer",
    ],
  ]);
});

Deno.test("forrest config check accepts repositories, organizations and enterprises together", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "forrest.toml"),
      `[host]
base_dir = "/srv/forrest"
ram = "16G"

[github]
app_id = 1234
private_key_file = "app.pem"
token_file = "github-token"
webhook_secret_file = "webhook-secret"

[repositories.acme.firmware.machines.build]
base_machine = "orgs/acme/build"

[organizations.acme]
runner_group = "Linux CI"
repositories = ["firmware", "app"]

[organizations.acme.machines.build]
base_machine = "enterprises/megacorp/base"
default_labels = true

[enterprises.megacorp.machines.base]
base_image = "images/debian.img"
`,
    );
    const result = await runForrest(["config", "check"], { cwd: dir });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(
      lines[0],
      "forrest.toml: OK, 3 machines in 1 repository, 1 organization, 1 enterprise",
    );
    assert.ok(
      lines.includes(
        `  github    App 1234, token from ${dir}/github-token at https://api.github.com, polling every 15m`,
      ),
      lines.join("\n"),
    );
    const table = lines.slice(lines.findIndex((l) => l.startsWith("MACHINE")));
    assert.deepEqual(
      table.map((
        line,
      ) => [line.split(/\s{2,}/)[0], line.split(/\s{2,}/).at(-1)]),
      [
        ["MACHINE", "RUNNER GROUP"],
        ["acme/firmware/build", "(default)"],
        ["orgs/acme/build", "Linux CI"],
        ["enterprises/megacorp/base", "(default)"],
      ],
    );
  });
});

Deno.test("forrest config check shows scale-set discovery, each machine's scale set and min_idle", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "forrest.toml"),
      `[host]
base_dir = "/srv/forrest"
ram = "16G"

[github]
token_file = "github-token"
discovery = "scale-set"

[organizations.acme]
runner_group = "host-a"

[organizations.acme.machines.build]
base_image = "images/debian.img"
scale_set = "acme-build"
min_idle = 2

[organizations.acme.machines.test]
base_image = "images/debian.img"
`,
    );
    const result = await runForrest(["config", "check"], { cwd: dir });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    const lines = result.stdout.trimEnd().split("\n");
    assert.ok(
      lines.includes(
        `  github    token from ${dir}/github-token at https://api.github.com, jobs through runner scale sets (no webhooks)`,
      ),
      lines.join("\n"),
    );
    const table = lines.slice(lines.findIndex((l) => l.startsWith("MACHINE")));
    assert.deepEqual(
      table.map((line) => line.split(/\s{2,}/).slice(-3)),
      [
        ["MIN_IDLE", "RUNNER GROUP", "SCALE SET"],
        ["2", "host-a", "acme-build"],
        ["0", "host-a", "test"],
      ],
    );
  });
});

Deno.test("forrest config check shows Forgejo instances and their machines beside GitHub's", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "forrest.toml"),
      `[host]
base_dir = "/srv/forrest"
ram = "16G"

[forgejo.codeberg]
url = "https://codeberg.example/"
guest_url = "http://10.0.2.100:3000"
token_file = "codeberg-token"

[repositories.alice.app]
forge = "codeberg"
package_token = true

[repositories.alice.app.machines.build]
base_image = "images/debian.img"

[organizations."team_x.y"]
forge = "codeberg"

[organizations."team_x.y".machines.build]
base_machine = "codeberg:alice/app/build"
`,
    );
    const result = await runForrest(["config", "check"], { cwd: dir });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    const lines = result.stdout.trimEnd().split("\n");
    assert.equal(
      lines[0],
      "forrest.toml: OK, 2 machines in 1 repository, 1 organization",
    );
    assert.ok(
      lines.includes(
        `  forgejo   codeberg: https://codeberg.example (guests: http://10.0.2.100:3000), token from ${dir}/codeberg-token, polling every 10s`,
      ),
      lines.join("\n"),
    );
    assert.ok(lines.includes("  github    not configured"), lines.join("\n"));
    const table = lines.slice(lines.findIndex((l) => l.startsWith("MACHINE")));
    assert.deepEqual(table.slice(1).map((line) => line.split(/\s{2,}/)[0]), [
      "codeberg:alice/app/build",
      "codeberg:orgs/team_x.y/build",
    ]);
  });
});

Deno.test("forrest config check reports every problem with its line and exits 2", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "forrest.toml"),
      `[host]
base_dir = "/srv/forrest"
ram = "12X"

[snippets.small]
cpus = 2

[repositories.acme.app.machines.build]
extends = ["smal"]
base_machine = "acme/images/debian-base"
dsik = "20G"
`,
    );
    const result = await runForrest(["config", "check"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      [
        'forrest.toml:3: host.ram: cannot parse size "12X": unknown unit "X" (use B, K, M, G or T)',
        'forrest.toml:9: repositories.acme.app.machines.build.extends[0]: unknown snippet "smal"; did you mean "small"?',
        'forrest.toml:10: repositories.acme.app.machines.build.base_machine: names no configured machine "acme/images/debian-base"',
        'forrest.toml:11: repositories.acme.app.machines.build.dsik: unknown key; did you mean "disk"?',
        "forrest.toml: 4 problems",
        "",
      ].join("\n"),
    );
  });
});

Deno.test("forrest config check reports a TOML syntax error with line and column", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "bad.toml"), `[host\nram = "1G"\n`);
    const result = await runForrest(["config", "check", join(dir, "bad.toml")]);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr,
      new RegExp(`^${dir}/bad\\.toml:1:6: TOML syntax error: `),
    );
    assert.doesNotMatch(result.stderr, STACK_LINE);
  });
});

Deno.test('forrest config check warns about network = "unsafe-host", machines without an image and missing VDE switches', async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "open.toml"),
      `[host]
base_dir = "${dir}/base"
ram = "4G"
[repositories.acme.app.machines.trusted]
base_image = "x.img"
network = "unsafe-host"
[repositories.acme.app.machines.default]
base_image = "x.img"
network_interfaces = [{ type = "vde", path = "${dir}" }]
[repositories.acme.app.machines.own]
cpus = 1
[repositories.acme.app.machines.lab]
base_image = "x.img"
network_interfaces = [{ type = "vde", path = "lab.ctl" }]
`,
    );
    const result = await runForrest([
      "config",
      "check",
      join(dir, "open.toml"),
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /acme\/app\/own .* its own image only /);
    assert.equal(
      result.stderr,
      'warning: acme/app/trusted has network = "unsafe-host": its jobs can reach every service on the host\'s loopback (10.0.2.2)\n' +
        `warning: acme/app/own has no base_image or base_machine: it starts only from its own image, ${dir}/base/machines/acme/app/own.img, and waits while there is none\n` +
        `warning: acme/app/lab: VDE switch ${dir}/lab.ctl does not exist (yet): its runs fail to start until it does\n`,
    );
  });
});

Deno.test("forrest finds the config through -c, $FORREST_CONFIG, then ./forrest.toml", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "forrest.toml"), VALID);
    await Deno.writeTextFile(
      join(dir, "other.toml"),
      VALID.replace("8G", "9G"),
    );
    const budget = (stdout: string) => /budget +(\S+) RAM/.exec(stdout)?.[1];

    const byDefault = await runForrest(["config", "check"], { cwd: dir });
    assert.equal(budget(byDefault.stdout), "8G");

    const byEnv = await runForrest(["config", "check"], {
      cwd: dir,
      env: { FORREST_CONFIG: "other.toml" },
    });
    assert.equal(budget(byEnv.stdout), "9G");

    // The flag wins over the environment, before or after the command.
    for (
      const args of [["-c", "forrest.toml", "config", "check"], [
        "config",
        "check",
        "--config",
        "forrest.toml",
      ]]
    ) {
      const byFlag = await runForrest(args, {
        cwd: dir,
        env: { FORREST_CONFIG: "other.toml" },
      });
      assert.equal(byFlag.code, 0, byFlag.stderr);
      assert.equal(budget(byFlag.stdout), "8G");
    }
  });
});

Deno.test("forrest config check without a config file says how to name one", async () => {
  await withTempDir(async (dir) => {
    const result = await runForrest(["config", "check"], { cwd: dir });
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      "forrest.toml: cannot read: no such file\nforrest.toml: 1 problem\n" +
        "Name a config file with --config FILE or $FORREST_CONFIG\n",
    );
  });
});

Deno.test("forrest rejects bad usage with exit code 2 and no stack trace", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["config", "chek"],
      /^forrest: unknown command 'chek'\n\(Did you mean check\?\)/,
    ],
    [["serve-everything"], /^forrest: unknown command 'serve-everything'/],
    [["--frobnicate", "version"], /^forrest: unknown option '--frobnicate'/],
    [
      ["-c", "a.toml", "config", "check", "b.toml"],
      /^forrest: Two config files given \("b\.toml" and --config "a\.toml"\): name one\n$/,
    ],
    [
      ["--log-level", "loud", "version"],
      /^forrest: Unknown log level "loud" \(use trace, debug, info, warning, error, fatal\)\n$/,
    ],
    [
      ["image", "build", "debian", "--forgejo-runner-version", "12.8.2"],
      /^forrest: --forgejo-runner-version and --forgejo-runner-sha256 go together\n$/,
    ],
    [
      [
        "image",
        "build",
        "debian",
        "--forgejo-runner-version",
        "12.8.2",
        "--forgejo-runner-sha256",
        "abc",
      ],
      /^forrest: --forgejo-runner-sha256 must be 64 hex digits, not "abc"\n$/,
    ],
    [
      ["--log-format", "xml", "version"],
      /^forrest: option '--log-format <format>' argument 'xml' is invalid\. Allowed choices are text, json\./,
    ],
  ];
  for (const [args, expected] of cases) {
    const result = await runForrest(args);
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.stderr, expected);
    assert.doesNotMatch(result.stderr, STACK_LINE);
  }
});

Deno.test("forrest takes the log level from $FORREST_LOG", async () => {
  const result = await runForrest(["version"], {
    env: { FORREST_LOG: "noisy" },
  });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /^forrest: Unknown log level "noisy"/);
  const fine = await runForrest(["version"], { env: { FORREST_LOG: "debug" } });
  assert.equal(fine.code, 0);
});

Deno.test("./forrest built by setup runs the same CLI", async () => {
  // scripts/setup.sh writes ./forrest (a binary or a launcher) before the tests.
  const path = join(REPO_ROOT, "forrest");
  const info = await Deno.stat(path).catch(() => undefined);
  if (!info) return; // not set up: the other tests cover the CLI itself
  const output = await new Deno.Command(path, {
    args: ["config", "check", "forrest.toml.example"],
    cwd: REPO_ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.match(
    new TextDecoder().decode(output.stdout),
    /^forrest\.toml\.example: OK, 3 machines/,
  );
});

Deno.test("forrest tpm init makes a machine's TPM state once, and again only with --force", async () => {
  await withTempDir(async (dir) => {
    const init = (...args: string[]) =>
      runForrest(["tpm", "init", ...args, "--base-dir", dir]);
    const state = join(dir, "machines/acme/app/hil.swtpm");
    const made = await init("acme/app/hil");
    assert.equal(made.code, 0, made.stderr);
    assert.match(
      made.stdout,
      /Made .*hil\.swtpm: a TPM 2\.0 with an endorsement key/,
    );
    assert.equal((await Deno.stat(state)).mode! & 0o777, 0o700);
    const first = await Deno.readFile(join(state, "tpm2-00.permall"));

    const again = await init("acme/app/hil");
    assert.equal(again.code, 2);
    assert.match(
      again.stderr,
      /hil\.swtpm exists already; --force replaces it/,
    );
    assert.deepEqual(
      await Deno.readFile(join(state, "tpm2-00.permall")),
      first,
    );

    const forced = await init("acme/app/hil", "--force");
    assert.equal(forced.code, 0, forced.stderr);
    assert.notDeepEqual(
      await Deno.readFile(join(state, "tpm2-00.permall")),
      first,
      "new keys",
    );
    for (const bad of ["acme/app", "acme/app/../x", "acme/a b/hil"]) {
      const result = await init(bad);
      assert.equal(result.code, 2, bad);
    }
    // Nothing but the one state, no temporary folder left.
    assert.deepEqual(
      [...Deno.readDirSync(join(dir, "machines/acme/app"))].map((e) => e.name),
      ["hil.swtpm"],
    );
  });
});
