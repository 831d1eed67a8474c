import assert from "node:assert/strict";
import { join } from "node:path";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { type LoadedConfig, parseConfig, readConfig } from "./load.ts";
import { ConfigReloader } from "./reload.ts";
import type { Config } from "./types.ts";
import { readWebhookSecret } from "./webhook_secret.ts";

const GOOD = `[host]\nbase_dir = "/srv/forrest"\nram = "8G"\n`;
const BIGGER = `[host]\nbase_dir = "/srv/forrest"\nram = "16G"\n`;
const BROKEN = `[host]\nbase_dir = "/srv/forrest"\nram = "16Q"\n`;

/** A temp folder with forrest.toml, and the log records made meanwhile. */
async function withConfigFile(
  body: (dir: string, records: LogRecord[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "forrest-reload-" });
  const records: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { memory: (record) => records.push(record) },
    loggers: [{
      category: ["forrest"],
      lowestLevel: "info",
      sinks: ["memory"],
    }],
  });
  try {
    await Deno.writeTextFile(join(dir, "forrest.toml"), GOOD);
    await body(dir, records);
  } finally {
    await reset();
    await Deno.remove(dir, { recursive: true });
  }
}

function initial(dir: string): LoadedConfig {
  const config = parseConfig(GOOD, { file: "forrest.toml", cwd: dir });
  return { config, text: GOOD };
}

/** Replaces the file the way editors do: write a new one, rename it over. */
async function replace(dir: string, text: string): Promise<void> {
  await Deno.writeTextFile(join(dir, ".forrest.toml.tmp"), text);
  await Deno.rename(join(dir, ".forrest.toml.tmp"), join(dir, "forrest.toml"));
}

const errors = (records: LogRecord[]) =>
  records.filter((record) => record.level === "error");

Deno.test("ConfigReloader.reload() takes a valid new file", async () => {
  await withConfigFile(async (dir) => {
    const seen: Config[] = [];
    const loaded = await readConfig("forrest.toml", { cwd: dir });
    const reloader = new ConfigReloader("forrest.toml", loaded, {
      cwd: dir,
      onChange: (config) => seen.push(config),
    });
    // A file that was only touched is no change.
    assert.equal(await reloader.reload(), "unchanged");
    assert.equal(reloader.current, loaded.config);
    await replace(dir, BIGGER);
    assert.equal(await reloader.reload(), "changed");
    assert.equal(reloader.current.host.ram, 16 * 1024 ** 3);
    assert.deepEqual(seen, [reloader.current]);
    assert.equal(await reloader.reload(), "unchanged");
    assert.equal(seen.length, 1);
  });
});

Deno.test("ConfigReloader.reload() keeps the old config and logs a broken file once", async () => {
  await withConfigFile(async (dir, records) => {
    const old = initial(dir);
    const reloader = new ConfigReloader("forrest.toml", old, { cwd: dir });
    await replace(dir, BROKEN);
    assert.equal(await reloader.reload(), "rejected");
    assert.equal(await reloader.reload(), "rejected");
    assert.equal(reloader.current, old.config);
    const logged = errors(records);
    assert.equal(logged.length, 1);
    assert.match(
      String(logged[0]!.properties.problems),
      /^forrest\.toml:3: host\.ram: cannot parse size "16Q"/,
    );
    // Fixed, then broken the same way again: that is a new change, logged anew.
    await replace(dir, BIGGER);
    assert.equal(await reloader.reload(), "changed");
    await replace(dir, BROKEN);
    assert.equal(await reloader.reload(), "rejected");
    assert.equal(errors(records).length, 2);
    assert.equal(reloader.current.host.ram, 16 * 1024 ** 3);
  });
});

Deno.test("ConfigReloader.reload() keeps the config when the file disappears", async () => {
  await withConfigFile(async (dir, records) => {
    const old = initial(dir);
    const reloader = new ConfigReloader("forrest.toml", old, { cwd: dir });
    await Deno.remove(join(dir, "forrest.toml"));
    assert.equal(await reloader.reload(), "rejected");
    assert.equal(reloader.current, old.config);
    assert.match(
      String(errors(records)[0]?.message.join("")),
      /Cannot read config file/,
    );
  });
});

Deno.test("ConfigReloader.watch() reloads when the file is replaced", async () => {
  await withConfigFile(async (dir) => {
    const changed = Promise.withResolvers<Config>();
    const reloader = new ConfigReloader("forrest.toml", initial(dir), {
      cwd: dir,
      debounce: 20,
      onChange: changed.resolve,
    });
    const controller = new AbortController();
    const watching = reloader.watch(controller.signal);
    try {
      // Unrelated files in the same folder do not count.
      await Deno.writeTextFile(join(dir, "other.txt"), "x");
      await replace(dir, BIGGER);
      const config = await changed.promise;
      assert.equal(config.host.ram, 16 * 1024 ** 3);
    } finally {
      controller.abort();
      await watching;
    }
  });
});

/** A config with a [github] table whose secret is `secretToml`. */
function githubConfig(secretToml: string, ram = "8G"): string {
  return `[host]\nbase_dir = "/srv/forrest"\nram = "${ram}"\n\n` +
    `[github]\napp_id = 1\nprivate_key_file = "app.pem"\n${secretToml}\n`;
}

/** A reloader on `text`, started with the secret that file names. */
async function secretReloader(dir: string, text: string) {
  await replace(dir, text);
  const loaded = await readConfig("forrest.toml", { cwd: dir });
  const secrets: string[] = [];
  const configs: Config[] = [];
  const reloader = new ConfigReloader("forrest.toml", loaded, {
    cwd: dir,
    webhookSecret: await readWebhookSecret(loaded.config.github!),
    onWebhookSecret: (secret) => secrets.push(secret.reveal()),
    onChange: (config) => configs.push(config),
  });
  return { reloader, secrets, configs };
}

/** Every word of every record, to look for a secret in. */
const logText = (records: LogRecord[]) =>
  records.map((r) => `${r.message.join("")} ${JSON.stringify(r.properties)}`)
    .join("\n");

Deno.test("ConfigReloader.reload() applies a changed inline webhook_secret", async () => {
  await withConfigFile(async (dir, records) => {
    const { reloader, secrets, configs } = await secretReloader(
      dir,
      githubConfig('webhook_secret = "old-inline-secret"'),
    );
    assert.equal(await reloader.reload(), "unchanged");
    await replace(dir, githubConfig('webhook_secret = "new-inline-secret"'));
    assert.equal(await reloader.reload(), "changed");
    assert.deepEqual(secrets, ["new-inline-secret"]);
    assert.equal(reloader.webhookSecret?.reveal(), "new-inline-secret");
    assert.equal(configs.length, 1);
    assert.ok(!logText(records).includes("inline-secret"), "never logged");
  });
});

Deno.test("ConfigReloader.reload() applies a new webhook_secret_file path", async () => {
  await withConfigFile(async (dir) => {
    await Deno.writeTextFile(join(dir, "old-secret"), "old-file-secret\n");
    await Deno.writeTextFile(join(dir, "new-secret"), "new-file-secret\n");
    const { reloader, secrets } = await secretReloader(
      dir,
      githubConfig('webhook_secret_file = "old-secret"'),
    );
    assert.equal(reloader.webhookSecret?.reveal(), "old-file-secret");
    await replace(dir, githubConfig('webhook_secret_file = "new-secret"'));
    assert.equal(await reloader.reload(), "changed");
    assert.deepEqual(secrets, ["new-file-secret"]);
  });
});

Deno.test("ConfigReloader.reload() re-reads the secret file when the config did not change", async () => {
  await withConfigFile(async (dir, records) => {
    const file = join(dir, "webhook-secret");
    await Deno.writeTextFile(file, "first-file-secret\n");
    const { reloader, secrets, configs } = await secretReloader(
      dir,
      githubConfig('webhook_secret_file = "webhook-secret"'),
    );
    // Rewritten with the same secret: no change.
    await Deno.writeTextFile(file, "first-file-secret");
    assert.equal(await reloader.reload(), "unchanged");
    // A rotated secret (a SIGHUP, or any change of the config file).
    await Deno.writeTextFile(file, "second-file-secret\n");
    assert.equal(await reloader.reload(), "changed");
    assert.deepEqual(secrets, ["second-file-secret"]);
    assert.deepEqual(configs, [], "the config itself did not change");
    assert.match(logText(records), /Reloaded the webhook secret/);
    assert.ok(!logText(records).includes("file-secret"), "never logged");
  });
});

Deno.test("ConfigReloader.reload() keeps the config and secret when the secret file is missing or empty", async () => {
  await withConfigFile(async (dir, records) => {
    const file = join(dir, "webhook-secret");
    await Deno.writeTextFile(file, "kept-file-secret\n");
    const { reloader, secrets, configs } = await secretReloader(
      dir,
      githubConfig('webhook_secret_file = "webhook-secret"'),
    );
    const old = reloader.current;

    // The same config, its secret file emptied: rejected, logged once.
    await Deno.writeTextFile(file, "\n");
    assert.equal(await reloader.reload(), "rejected");
    assert.equal(await reloader.reload(), "rejected");
    assert.equal(errors(records).length, 1);
    assert.match(
      String(errors(records)[0]!.properties.error),
      /^The webhook secret file .*webhook-secret is empty$/,
    );

    // A new config whose secret file does not exist: the whole reload is
    // refused, so the config in force and its secret still agree.
    await replace(
      dir,
      githubConfig('webhook_secret_file = "missing-secret"', "16G"),
    );
    assert.equal(await reloader.reload(), "rejected");
    assert.equal(errors(records).length, 2);
    assert.match(
      String(errors(records)[1]!.properties.error),
      /^Cannot read the webhook secret file .*missing-secret: /,
    );
    assert.equal(reloader.current, old);
    assert.equal(reloader.webhookSecret?.reveal(), "kept-file-secret");
    assert.deepEqual(secrets, []);
    assert.deepEqual(configs, []);

    // Once the file is there, the next reload (a SIGHUP) takes both.
    await Deno.writeTextFile(join(dir, "missing-secret"), "found-file-secret");
    assert.equal(await reloader.reload(), "changed");
    assert.equal(reloader.current.host.ram, 16 * 1024 ** 3);
    assert.deepEqual(secrets, ["found-file-secret"]);
    assert.ok(!logText(records).includes("file-secret"), "never logged");
  });
});

Deno.test("ConfigReloader.reload() logs a broken file again after a revert to the config in force", async () => {
  await withConfigFile(async (dir, records) => {
    const reloader = new ConfigReloader("forrest.toml", initial(dir), {
      cwd: dir,
    });
    await replace(dir, BROKEN);
    assert.equal(await reloader.reload(), "rejected");
    await replace(dir, GOOD);
    assert.equal(await reloader.reload(), "unchanged");
    await replace(dir, BROKEN);
    assert.equal(await reloader.reload(), "rejected");
    assert.equal(errors(records).length, 2);
  });
});
