/**
 * importConfig() end to end: YAML in, TOML out, and the TOML loaded with
 * Forrest's own loader (the code `config check` runs). Each machine must
 * come out with the values the original computed; those are worked out
 * here independently, with the `yaml` package's own merge-key support and
 * the original's dropping of `.`-keys and `*_snippets` tables.
 */

import assert from "node:assert/strict";
import { isAbsolute, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { parse as parseToml } from "smol-toml";
import { parseConfig } from "../load.ts";
import { ConfigError } from "../problem.ts";
import { allMachines, type Config, scopeName, tripletName } from "../types.ts";
import { formatImportNote, importConfig } from "./mod.ts";

const FIXTURES = new URL("../../../tests/fixtures/original/", import.meta.url);
/** Where the imported TOML is taken to live; relative paths resolve here. */
const CONFIG_DIR = "/etc/forrest";

function load(toml: string): Config {
  return parseConfig(toml, { file: "forrest.toml", cwd: CONFIG_DIR });
}

function importYaml(yaml: string) {
  return importConfig(yaml, { file: "config.yaml" });
}

/** The value at `keys` of TOML text, as plain data. */
function tomlAt(toml: string, ...keys: string[]): unknown {
  let value: unknown = parseToml(toml);
  for (const key of keys) {
    value = (value as Record<string, unknown> | undefined)?.[key];
  }
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

function keysAt(toml: string, ...keys: string[]): string[] {
  return Object.keys(tomlAt(toml, ...keys) as object);
}

function problemsOf(yaml: string): string[] {
  try {
    importYaml(yaml);
  } catch (error) {
    if (error instanceof ConfigError) return error.lines;
    throw error;
  }
  assert.fail("expected problems, the YAML was imported");
}

// --- what the original computes, worked out without the importer ---

type Yaml = Record<string, unknown>;

/** The original dropped `.`-keys through mappings (not into lists). */
function dropDotKeys(value: unknown): unknown {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return value;
  }
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => !key.startsWith("."))
      .map(([key, item]) => [key, dropDotKeys(item)]),
  );
}

/** The document as the original saw it after merging. */
function originalDocument(yaml: string): Yaml {
  const merged = parseYaml(yaml, { merge: true, maxAliasCount: -1 }) as Yaml;
  const top = Object.fromEntries(
    Object.entries(merged).filter(([key]) => !key.endsWith("_snippets")),
  );
  return dropDotKeys(top) as Yaml;
}

/** `<digits><unit>` in powers of 1024, as the original's SizeInBytes. */
function originalSize(text: unknown): number {
  const match = /^(\d+)([BKMGT])$/.exec(String(text));
  assert.ok(match, `not a size of the original: ${String(text)}`);
  return Number(match[1]) * 1024 ** "BKMGT".indexOf(match[2]!);
}

interface MachineView {
  cpus: number;
  ram: number;
  disk: number | undefined;
  baseImage: string | undefined;
  baseMachine: string | undefined;
  useBase: string;
  setupTemplate:
    | { path: string | undefined; parameters: Record<string, string> }
    | undefined;
  shared: { path: string; tag: string; writable: boolean }[];
  artifacts: {
    name: string;
    path: string;
    url: string;
    quota: number;
    token: string | undefined;
  }[];
}

/**
 * Every machine of the YAML as the original ran it, with paths where
 * Forrest looks for them: relative image paths in base_dir, other relative
 * paths in the config file's folder (the notes say so).
 */
function expectedMachines(yaml: string): Map<string, MachineView> {
  const doc = originalDocument(yaml);
  const baseDir = (doc.host as Yaml).base_dir as string;
  const machines = new Map<string, MachineView>();
  for (const [owner, repos] of Object.entries(doc.repositories as Yaml)) {
    for (const [repo, table] of Object.entries(repos as Yaml)) {
      const repoMachines = (table as Yaml).machines as Yaml;
      for (const [name, value] of Object.entries(repoMachines)) {
        const m = value as Yaml;
        const template = m.setup_template as Yaml;
        const image = m.base_image as string | null | undefined;
        machines.set(`${owner}/${repo}/${name}`, {
          cpus: m.cpus as number,
          ram: originalSize(m.ram),
          disk: originalSize(m.disk),
          baseImage: image == null
            ? undefined
            : isAbsolute(image)
            ? image
            : resolve(baseDir, image),
          baseMachine: (m.base_machine ?? undefined) as string | undefined,
          useBase: (m.use_base ?? "if_newer") as string,
          setupTemplate: {
            path: resolve(CONFIG_DIR, template.path as string),
            parameters: (template.parameters ?? {}) as Record<string, string>,
          },
          shared: ((m.shared ?? []) as Yaml[]).map((dir) => ({
            path: resolve(CONFIG_DIR, dir.path as string),
            tag: dir.tag as string,
            writable: (dir.writable ?? false) as boolean,
          })),
          artifacts: ((m.artifacts ?? []) as Yaml[]).map((store) => ({
            name: (store.name ?? "artifact") as string,
            path: resolve(CONFIG_DIR, store.path as string),
            url: store.url as string,
            quota: originalSize(store.quota),
            token: (store.token ?? undefined) as string | undefined,
          })),
        });
      }
    }
  }
  return machines;
}

/** What Forrest's loader made of each machine, in the same shape. */
function loadedMachines(config: Config): Map<string, MachineView> {
  return new Map(
    allMachines(config).map((m) => [tripletName(m.triplet), {
      cpus: m.cpus,
      ram: m.ram,
      disk: m.disk,
      baseImage: m.baseImage,
      baseMachine: m.baseMachine ? tripletName(m.baseMachine) : undefined,
      useBase: m.useBase,
      setupTemplate: m.setupTemplate && {
        path: m.setupTemplate.path,
        parameters: { ...m.setupTemplate.parameters },
      },
      shared: m.shared.map((dir) => ({ ...dir })),
      artifacts: m.artifacts.map((store) => ({
        name: store.name,
        path: store.path,
        url: store.url,
        quota: store.quota,
        token: store.token?.reveal(),
      })),
    }]),
  );
}

function assertSameMachines(yaml: string, config: Config): void {
  const expected = expectedMachines(yaml);
  const loaded = loadedMachines(config);
  assert.deepEqual([...loaded.keys()].sort(), [...expected.keys()].sort());
  for (const [name, machine] of expected) {
    assert.deepEqual(loaded.get(name), machine, `machine ${name}`);
  }
}

// --- the original's own example and a config with every key ---

Deno.test("importConfig() keeps every machine of the original's docs example", async () => {
  const yaml = await Deno.readTextFile(new URL("docs-example.yaml", FIXTURES));
  const result = importConfig(yaml, { file: "config.yaml" });
  const config = load(result.toml);
  assertSameMachines(yaml, config);
  assert.equal(config.host.baseDir, "/srv/forrest");
  assert.equal(config.host.ram, 120 * 1024 ** 3);
  assert.equal(config.github?.app?.appId, 1234);
  assert.equal(config.github?.app?.privateKeyFile, "/etc/forrest/key.pem");
  assert.equal(config.github?.pollingInterval, 15 * 60_000);
  const secret = config.github?.webhookSecret;
  assert.equal(secret?.kind, "inline");
  assert.equal(
    secret?.kind === "inline" && secret.value.reveal(),
    "Some super secret text",
  );
  assert.equal(
    config.scopes[0]?.persistenceToken?.reveal(),
    "<PERSISTENCE_TOKEN>",
  );
  // Anchors became snippets; merge lists became extends, reversed.
  assert.deepEqual(keysAt(result.toml, "snippets"), [
    "os-arch",
    "os-debian",
    "machine-small",
    "machine-medium",
  ]);
  assert.deepEqual(
    tomlAt(result.toml, "snippets", "machine-medium", "extends"),
    ["machine-small"],
  );
  const images = ["repositories", "hnez", "forrest-images", "machines"];
  assert.deepEqual(tomlAt(result.toml, ...images, "arch-base", "extends"), [
    "machine-small",
    "os-arch",
  ]);
  assert.deepEqual(
    tomlAt(
      result.toml,
      "repositories",
      "hnez",
      "forrest-test",
      "machines",
      "test-debian",
      "extends",
    ),
    ["machine-medium", "os-debian"],
  );
  assert.deepEqual(
    result.notes.map((note) => formatImportNote("c.yaml", note)),
    [
      'c.yaml:10: note: github.jwt_key_file: "key.pem" is a relative path: the original read it from its working directory, Forrest reads it from the TOML file\'s folder',
      'c.yaml:12: note: github.webhook_secret: the webhook secret is written inline, as the original had it; better put it in a file (mode 0600) and write webhook_secret_file = "FILE" instead',
    ],
  );
});

Deno.test("importConfig() keeps every machine of a config with every key", async () => {
  const yaml = await Deno.readTextFile(new URL("every-key.yaml", FIXTURES));
  const result = importYaml(yaml);
  const config = load(result.toml);
  assertSameMachines(yaml, config);
  assert.equal(config.github?.pollingInterval, 5 * 60_000);
  assert.deepEqual(
    config.scopes.map((r) => [
      scopeName(r.scope),
      r.persistenceToken?.reveal(),
    ]),
    [
      ["acme/images", "images-persistence-token"],
      ["acme/firmware", "firmware-persistence-token"],
      ["acme/firmware-next", "firmware-next-persistence-token"],
      ["ACME/tools", undefined],
    ],
  );
  assert.match(
    result.toml,
    /\nnetwork_interfaces = \[\{ type = "vde", path = "\/run\/vde\/lab.ctl" \}\]\n/,
  );
  const lines = yaml.split("\n");
  const lineOf = (text: string) => lines.findIndex((l) => l.includes(text)) + 1;
  const notes = result.notes.map((n) => [n.level, n.line, n.path.join(".")]);
  for (
    const expected of [
      ["note", lineOf("webhook_secret:"), "github.webhook_secret"],
      ["note", lineOf("- path: cache/ccache"), ".machines.cache.shared.1.path"],
      [
        "note",
        lineOf("use_base: never"),
        "repositories.acme.images.machines.offline.use_base",
      ],
      [
        "note",
        lineOf("handmade:"),
        "repositories.acme.images.machines.handmade",
      ],
      [
        "note",
        lineOf("base_image: images/local.img"),
        "repositories.acme.images.machines.local-image.base_image",
      ],
      [
        "note",
        lineOf("lab-template:"),
        "repositories.acme.images.machines.lab-template",
      ],
      ["note", lineOf("  ACME:") + 1, "repositories.ACME.tools"],
    ]
  ) {
    assert.ok(
      notes.some((note) => JSON.stringify(note) === JSON.stringify(expected)),
      `no note ${JSON.stringify(expected)} in ${JSON.stringify(notes)}`,
    );
  }
  // Each note stands in the TOML too, above what it is about.
  assert.match(
    result.toml,
    /# NOTE: use_base = "never" means something else[^[]*\nuse_base = "never"\n/,
  );
  assert.match(
    result.toml,
    /# NOTE: neither base_image nor base_machine[^[]*\n\[repositories\.acme\.images\.machines\.handmade\]/,
  );
});

Deno.test("importConfig() turns shared anchors into snippets and merges elsewhere into values", async () => {
  const yaml = await Deno.readTextFile(new URL("every-key.yaml", FIXTURES));
  const toml = importYaml(yaml).toml;
  // Only anchors that machines merge become snippets; `template` is merged
  // inside setup_template only, so it is written into the tables that use it.
  assert.deepEqual(keysAt(toml, "snippets"), [
    "base",
    "debian",
    "small",
    "medium",
    "cache",
    "uploads",
  ]);
  assert.deepEqual(tomlAt(toml, "snippets", "small", "extends"), ["base"]);
  assert.deepEqual(tomlAt(toml, "snippets", "medium", "extends"), ["small"]);
  const images = ["repositories", "acme", "images", "machines"];
  // `tiny: *small` is the snippet itself.
  assert.deepEqual(tomlAt(toml, ...images, "tiny"), { extends: ["small"] });
  // A mapping written inline in the merge list is resolved in place.
  assert.deepEqual(tomlAt(toml, ...images, "inline", "extends"), ["debian"]);
  assert.equal(tomlAt(toml, ...images, "inline", "cpus"), 1);
  // YAML replaces a merged setup_template whole; extends would merge its
  // parameters, so that machine is written out in full.
  assert.equal(tomlAt(toml, ...images, "lab-template", "extends"), undefined);
  assert.deepEqual(
    tomlAt(toml, ...images, "lab-template", "setup_template", "parameters"),
    { LAB: "1" },
  );
  // An explicit null hides a merged key, which extends cannot say.
  assert.equal(tomlAt(toml, ...images, "scratch", "extends"), undefined);
  assert.equal(tomlAt(toml, ...images, "scratch", "base_image"), undefined);
  // Repository-level merges are resolved in place.
  assert.deepEqual(
    tomlAt(
      toml,
      "repositories",
      "acme",
      "firmware-next",
      "machines",
      "build",
      "extends",
    ),
    ["uploads", "cache", "medium", "debian"],
  );
});

// --- precedence ---

const HEAD = `host: { base_dir: /srv/forrest, ram: 64G }
github: { app_id: 1, jwt_key_file: /k.pem, webhook_secret: s }
`;

const TEMPLATE = "setup_template: { path: /t }";

function machineOf(yaml: string, name = "m") {
  const config = load(importYaml(yaml).toml);
  const machine = allMachines(config).find((m) => m.triplet.machine === name);
  assert.ok(machine, `machine ${name}`);
  return machine;
}

Deno.test("importConfig() reverses a merge list: in YAML the earlier mapping wins", () => {
  const yaml = `${HEAD}
.s:
  a: &a { cpus: 1, ram: 1G, disk: 1G, ${TEMPLATE}, base_image: /a.img }
  b: &b { cpus: 2, ram: 2G, disk: 2G, ${TEMPLATE}, base_image: /b.img, use_base: always }
repositories:
  o:
    r:
      machines:
        m:
          <<: [*a, *b]
          ram: 3G
`;
  const toml = importYaml(yaml).toml;
  assert.deepEqual(
    tomlAt(toml, "repositories", "o", "r", "machines", "m", "extends"),
    ["b", "a"],
  );
  const m = machineOf(yaml);
  assert.equal(m.cpus, 1);
  assert.equal(m.disk, 1024 ** 3);
  assert.equal(m.baseImage, "/a.img");
  // Only b sets it, so b's value holds.
  assert.equal(m.useBase, "always");
  // The machine's own key wins over both, wherever it stands.
  assert.equal(m.ram, 3 * 1024 ** 3);
  assertSameMachines(yaml, load(importYaml(yaml).toml));
});

Deno.test("importConfig() lets explicit keys win, even written before <<", () => {
  const yaml = `${HEAD}
.s:
  a: &a { cpus: 1, ram: 1G, disk: 1G, ${TEMPLATE} }
repositories:
  o:
    r:
      machines:
        m:
          cpus: 7
          <<: *a
`;
  assert.equal(machineOf(yaml).cpus, 7);
  assertSameMachines(yaml, load(importYaml(yaml).toml));
});

Deno.test("importConfig() resolves merges three deep, each level winning over the one it merges", () => {
  const yaml = `${HEAD}
.s:
  a: &a { cpus: 1, ram: 1G, disk: 1G, ${TEMPLATE} }
  b: &b { <<: *a, cpus: 2 }
  c: &c { <<: *b, ram: 3G }
repositories:
  o:
    r:
      machines:
        m: { <<: *c, disk: 4G }
`;
  const toml = importYaml(yaml).toml;
  assert.deepEqual(tomlAt(toml, "snippets", "c", "extends"), ["b"]);
  assert.deepEqual(tomlAt(toml, "snippets", "b", "extends"), ["a"]);
  const m = machineOf(yaml);
  assert.deepEqual([m.cpus, m.ram, m.disk], [2, 3 * 1024 ** 3, 4 * 1024 ** 3]);
});

Deno.test("importConfig() keeps the original's quirk: of two nested merges in one list only the first's is taken", () => {
  // yaml_serde merges `<<: [*x, *y]` key by key; x's own `<<` comes first,
  // so y's `<<` is a key the mapping already has and is dropped: q's disk
  // never reaches m, and p's does.
  const yaml = `${HEAD}
.s:
  p: &p { disk: 1G, ${TEMPLATE} }
  q: &q { disk: 2G, base_image: /q.img }
  x: &x { <<: *p, cpus: 1 }
  y: &y { <<: *q, ram: 2G }
repositories:
  o:
    r:
      machines:
        m: { <<: [*x, *y] }
`;
  const result = importYaml(yaml);
  const m = machineOf(yaml);
  assert.deepEqual(
    [m.cpus, m.ram, m.disk, m.baseImage],
    [1, 2 * 1024 ** 3, 1024 ** 3, undefined],
  );
  assert.match(result.toml, /# NOTE: written out in full/);
});

Deno.test("importConfig() expands merges inside setup_template in place", () => {
  const yaml = `${HEAD}
.s:
  t: &t { path: /templates/generic, parameters: { A: "1", B: "2" } }
repositories:
  o:
    r:
      machines:
        m:
          cpus: 1
          ram: 1G
          disk: 1G
          base_image: /i.img
          setup_template: { <<: *t, path: /templates/other }
`;
  assert.equal(tomlAt(importYaml(yaml).toml, "snippets"), undefined);
  assert.deepEqual(machineOf(yaml).setupTemplate, {
    path: "/templates/other",
    parameters: { A: "1", B: "2" },
  });
});

// --- what the original refused ---

const MACHINE = `${HEAD}
repositories:
  o:
    r:
      machines:
        m:
          cpus: 1
          ram: 1G
          disk: 1G
          ${TEMPLATE}
`;

Deno.test("importConfig() reports a YAML syntax error as FILE:LINE:COLUMN on one line", () => {
  assert.deepEqual(problemsOf("host:\n  ram: [1G\nrepositories: {}\n"), [
    "config.yaml:3:1: YAML syntax error: flow sequence in block collection must be sufficiently indented and end with a ]",
  ]);
});

Deno.test("importConfig() refuses two << keys in one mapping, as the original did", () => {
  const lines = problemsOf(`a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n`);
  assert.equal(lines.length, 1);
  assert.match(
    lines[0]!,
    /^config\.yaml:4:3: YAML syntax error: duplicate key "<<"/,
  );
});

Deno.test("importConfig() reports an unknown key with its line, where it was written", () => {
  const yaml = `${HEAD}
.s:
  a: &a
    cpu: 4
repositories:
  o:
    r:
      machines:
        m: { <<: *a, ram: 1G, disk: 1G, ${TEMPLATE}, cpus: 1, dsik: 2G }
  timeout: 5m
`;
  assert.deepEqual(problemsOf(yaml), [
    'config.yaml:6: repositories.o.r.machines.m.cpu: unknown key; did you mean "cpus"?',
    'config.yaml:11: repositories.o.r.machines.m.dsik: unknown key; did you mean "disk"?',
    'config.yaml:12: repositories.timeout: expected a mapping, found "5m"',
  ]);
});

Deno.test("importConfig() reports wrong types and missing keys with their lines", () => {
  const yaml = `${HEAD}
repositories:
  o:
    r:
      machines:
        m:
          cpus: four
          ram: 4GB
          disk: 1.5G
          base_machine: o/r
          use_base: sometimes
          ${TEMPLATE}
          shared: [{ path: /x, tag: x, writable: "yes" }]
          artifacts: [{ path: /a, url: https://a.example }]
        n:
          ${TEMPLATE}
server: {}
`;
  assert.deepEqual(problemsOf(yaml), [
    'config.yaml:9: repositories.o.r.machines.m.cpus: expected a whole number from 0 to 4294967295, found "four"',
    'config.yaml:10: repositories.o.r.machines.m.ram: expected a size such as "4G" (a whole number and B, K, M, G or T), found "4GB"',
    'config.yaml:11: repositories.o.r.machines.m.disk: expected a size such as "4G" (a whole number and B, K, M, G or T), found "1.5G"',
    'config.yaml:12: repositories.o.r.machines.m.base_machine: expected "owner/repo/machine", found "o/r"',
    'config.yaml:13: repositories.o.r.machines.m.use_base: expected one of "if_newer", "always", "never", found "sometimes"',
    'config.yaml:15: repositories.o.r.machines.m.shared[0].writable: expected true or false, found "yes"',
    "config.yaml:16: repositories.o.r.machines.m.artifacts[0].quota: required key is missing",
    "config.yaml:17: repositories.o.r.machines.n.cpus: required key is missing",
    "config.yaml:17: repositories.o.r.machines.n.disk: required key is missing",
    "config.yaml:17: repositories.o.r.machines.n.ram: required key is missing",
    "config.yaml:19: server: unknown key (forrest's YAML config has github, host, repositories here)",
  ]);
});

Deno.test("importConfig() reports merging something that is not a mapping", () => {
  assert.deepEqual(problemsOf(`${MACHINE}          <<: 5\n`), [
    'config.yaml:13: repositories.o.r.machines.m."<<": expected a mapping or a list of mappings to merge, found 5',
  ]);
});

Deno.test("importConfig() reports an alias to an unknown anchor", () => {
  assert.deepEqual(problemsOf(`${MACHINE}          <<: *nope\n`), [
    'config.yaml:13: repositories.o.r.machines.m."<<": unknown anchor "*nope"',
  ]);
});

Deno.test("importConfig() ignores unknown setup_template keys, as the original, with a note", () => {
  const yaml =
    MACHINE.replace(TEMPLATE, "setup_template: { path: /t, pth: /u }") +
    "          base_image: /i.img\n";
  const result = importYaml(yaml);
  assert.deepEqual(machineOf(yaml).setupTemplate, {
    path: "/t",
    parameters: {},
  });
  assert.deepEqual(result.notes.map((n) => n.message), [
    'the webhook secret is written inline, as the original had it; better put it in a file (mode 0600) and write webhook_secret_file = "FILE" instead',
    "setup_template.pth is left out: the original ignored it",
  ]);
});

Deno.test("importConfig() writes sizes and durations the way Forrest reads them", () => {
  const yaml = HEAD.replace("ram: 64G", "ram: +064G").replace(
    "webhook_secret: s",
    "webhook_secret: s, polling_interval: 090s",
  ) + MACHINE.slice(HEAD.length).replace("disk: 1G", "disk: 0G").replace(
    "cpus: 1",
    "cpus: 1\n          base_image: /i.img",
  );
  const result = importYaml(yaml);
  assert.match(result.toml, /\nram = "64G"\n/);
  assert.match(result.toml, /\npolling_interval = "90s"\n/);
  // A disk of 0 never grew the image: Forrest's default (the image's size).
  assert.equal(machineOf(yaml).disk, undefined);
  assert.ok(
    result.notes.some((n) => n.message.startsWith('disk "0G" is left out')),
  );
});

Deno.test("importConfig() quotes keys that TOML needs quoted", () => {
  const yaml = `${HEAD}
repositories:
  o:
    my.repo:
      machines:
        m.1: { cpus: 1, ram: 1G, disk: 1G, base_image: /i.img, ${TEMPLATE} }
`;
  const toml = importYaml(yaml).toml;
  assert.match(toml, /\n\[repositories\.o\."my\.repo"\.machines\."m\.1"\]\n/);
  assert.equal(scopeName(machineOf(yaml, "m.1").triplet.scope), "o/my.repo");
});

Deno.test("importConfig() writes a snippet out in full where extends would merge what YAML replaced", () => {
  // b's own setup_template replaces a's whole in YAML (no parameters left);
  // `extends = ["a"]` would keep a's parameters.
  const yaml = `${HEAD}
.s:
  a: &a { cpus: 1, ram: 1G, disk: 1G, setup_template: { path: /t, parameters: { P: "1" } } }
  b: &b { <<: *a, setup_template: { path: /other } }
repositories:
  o:
    r:
      machines:
        m: { <<: *b, base_image: /i.img }
`;
  const result = importYaml(yaml);
  assert.equal(tomlAt(result.toml, "snippets", "a"), undefined);
  assert.equal(tomlAt(result.toml, "snippets", "b", "extends"), undefined);
  assert.deepEqual(
    tomlAt(result.toml, "repositories", "o", "r", "machines", "m", "extends"),
    ["b"],
  );
  assert.deepEqual(machineOf(yaml).setupTemplate, {
    path: "/other",
    parameters: {},
  });
  assertSameMachines(yaml, load(result.toml));
});

Deno.test("importConfig() notes repositories whose names differ only in case", () => {
  const machine =
    `{ cpus: 1, ram: 1G, disk: 1G, base_image: /i.img, ${TEMPLATE} }`;
  const yaml = `${HEAD}
repositories:
  acme:
    app: { machines: { m: ${machine} } }
  Acme:
    app: { machines: { n: ${machine} } }
    tools: { machines: { t: ${machine} } }
`;
  const result = importYaml(yaml);
  assert.deepEqual(
    result.notes.filter((n) => n.line === 8 || n.line === 9).map((n) => [
      n.line,
      n.message.split(":")[0],
    ]),
    [
      [8, '"Acme/app" and "acme/app" differ only in case'],
      [9, 'owner "Acme" and "acme" differ only in case'],
    ],
  );
  // Forrest takes the two for one repository, as the note says.
  assert.throws(() => load(result.toml), /already configured as "acme\/app"/);
});
