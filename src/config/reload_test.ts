import assert from "node:assert/strict";
import { join } from "node:path";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { type LoadedConfig, parseConfig, readConfig } from "./load.ts";
import { ConfigReloader } from "./reload.ts";
import type { Config } from "./types.ts";

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
