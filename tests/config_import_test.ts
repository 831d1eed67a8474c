/**
 * `forrest config import` as a user runs it: the original's example config
 * in, a TOML file out that `forrest config check` accepts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT, runForrest, withTempDir } from "./cli.ts";

const DOCS_EXAMPLE = join(
  REPO_ROOT,
  "tests/fixtures/original/docs-example.yaml",
);
const EVERY_KEY = join(REPO_ROOT, "tests/fixtures/original/every-key.yaml");
const STACK_LINE = /^\s+at /m;

Deno.test("forrest config import writes a file that forrest config check accepts", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "forrest.toml");
    const result = await runForrest([
      "config",
      "import",
      DOCS_EXAMPLE,
      "-o",
      out,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "");
    assert.deepEqual(result.stderr.trimEnd().split("\n"), [
      `${DOCS_EXAMPLE}:10: note: github.jwt_key_file: "key.pem" is a relative path: the original read it from its working directory, Forrest reads it from the TOML file's folder`,
      `${DOCS_EXAMPLE}:12: note: github.webhook_secret: the webhook secret is written inline, as the original had it; better put it in a file (mode 0600) and write webhook_secret_file = "FILE" instead`,
      `Wrote ${out}: 4 machines in 2 repositories; forrest config check accepts it`,
    ]);
    // It may hold the webhook secret and tokens.
    assert.equal((await Deno.stat(out)).mode! & 0o777, 0o600);
    const check = await runForrest(["config", "check", out]);
    assert.equal(check.code, 0, check.stderr);
    assert.equal(check.stderr, "");
    assert.match(check.stdout, /OK, 4 machines in 2 repositories/);
    assert.match(
      check.stdout,
      /hnez\/forrest-test\/test-debian\s+8\s+8G\s+32G\s+machine hnez\/forrest-images\/debian-base\s+if_newer/,
    );
    // Nothing left beside it.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "forrest.toml",
    ]);
  });
});

Deno.test("forrest config import of every key passes config check, with its warnings", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "forrest.toml");
    const result = await runForrest(["config", "import", EVERY_KEY, "-o", out]);
    assert.equal(result.code, 0, result.stderr);
    // Extra NICs carry over as they are.
    assert.doesNotMatch(result.stderr, /network_interfaces/);
    assert.match(
      await Deno.readTextFile(out),
      /\nnetwork_interfaces = \[\{ type = "vde", path = "\/run\/vde\/lab\.ctl" \}\]\n/,
    );
    const check = await runForrest(["config", "check", out]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /OK, 14 machines in 4 repositories/);
  });
});

Deno.test("forrest config import without -o prints the TOML", async () => {
  const result = await runForrest(["config", "import", DOCS_EXAMPLE]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^# Imported from docs-example\.yaml/);
  assert.match(
    result.stdout,
    /\n\[repositories\.hnez\.forrest-images\.machines\.arch-base\]\n(#.*\n)*extends = \["machine-small", "os-arch"\]\n/,
  );
  assert.doesNotMatch(result.stderr, /Wrote/);
});

Deno.test("forrest config import refuses to replace a file unless --force", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "forrest.toml");
    await Deno.writeTextFile(out, "# mine\n");
    const refused = await runForrest([
      "config",
      "import",
      DOCS_EXAMPLE,
      "-o",
      out,
    ]);
    assert.equal(refused.code, 2);
    assert.equal(
      refused.stderr,
      `forrest: ${out} exists: pass --force to replace it, or name another file\n`,
    );
    assert.equal(await Deno.readTextFile(out), "# mine\n");
    const forced = await runForrest([
      "config",
      "import",
      DOCS_EXAMPLE,
      "-o",
      out,
      "--force",
    ]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(await Deno.readTextFile(out), /^# Imported from/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "forrest.toml",
    ]);
  });
});

Deno.test("forrest config import reports a YAML syntax error on one line and exits 2", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "config.yaml");
    await Deno.writeTextFile(file, "host:\n  base_dir: [/srv\n  ram: 1G\n");
    const result = await runForrest([
      "config",
      "import",
      file,
      "-o",
      join(dir, "out.toml"),
    ]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    const lines = result.stderr.trimEnd().split("\n");
    assert.match(
      lines[0]!,
      new RegExp(`^${file}:\\d+:\\d+: YAML syntax error: `),
    );
    assert.equal(lines.at(-1), `${file}: 1 problem`);
    assert.doesNotMatch(result.stderr, STACK_LINE);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      "config.yaml",
    ]);
  });
});

Deno.test("forrest config import says what Forrest's check still rejects, and exits 2", async () => {
  await withTempDir(async (dir) => {
    const file = join(dir, "config.yaml");
    // The original accepted a machine larger than the host's RAM (it just
    // never started); Forrest's check does not.
    await Deno.writeTextFile(
      file,
      `host: { base_dir: /srv/forrest, ram: 4G }
github: { app_id: 1, jwt_key_file: /k.pem, webhook_secret: s }
repositories:
  o:
    r:
      machines:
        big: { cpus: 2, ram: 8G, disk: 10G, base_image: /i.img, setup_template: { path: /t } }
`,
    );
    const out = join(dir, "forrest.toml");
    const result = await runForrest(["config", "import", file, "-o", out]);
    assert.equal(result.code, 2);
    const lines = result.stderr.trimEnd().split("\n");
    assert.match(
      lines.at(-2)!,
      new RegExp(
        `^${out}:\\d+: repositories\\.o\\.r\\.machines\\.big\\.ram: 8G is more than the host's RAM budget`,
      ),
    );
    assert.match(
      lines.at(-1)!,
      /1 problem that forrest config check reports too/,
    );
    // The file is written all the same, for the user to fix.
    assert.match(await Deno.readTextFile(out), /ram = "8G"/);
  });
});
