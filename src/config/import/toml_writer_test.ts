import assert from "node:assert/strict";
import { parse } from "smol-toml";
import type { PlacedNote } from "./toml_model.ts";
import { tomlKey, tomlString, writeToml } from "./toml_writer.ts";

function note(at: string[], message: string): PlacedNote {
  return { level: "note", line: 1, path: [], at, message };
}

/** smol-toml's tables have no prototype; compare as plain data. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

Deno.test("tomlString() escapes what TOML requires, and reads back the same", () => {
  const text =
    'quote " backslash \\ tab \t newline \n bell \u0007 del \u007f é 🌲';
  const written = tomlString(text);
  const raw = [...written].filter((char) => {
    const code = char.codePointAt(0)!;
    return (code < 0x20 && code !== 0x09) || code === 0x7f;
  });
  assert.deepEqual(raw, []);
  assert.equal(parse(`k = ${written}`).k, text);
});

Deno.test("tomlKey() quotes only keys that need it", () => {
  assert.equal(tomlKey("forrest-images"), "forrest-images");
  assert.equal(tomlKey("debian_12"), "debian_12");
  assert.equal(tomlKey("my.repo"), '"my.repo"');
  assert.equal(tomlKey(""), '""');
});

Deno.test("writeToml() writes short tables inline and long ones as their own tables", () => {
  const toml = writeToml(["A header."], [{
    path: ["repositories", "acme", "my.repo", "machines", "m"],
    table: {
      extends: ["small", "debian"],
      cpus: 2,
      setup_template: {
        path: "/etc/forrest/templates/generic",
        parameters: { RUNNER_VERSION: "2.318.0", RUNNER_HASH: "0".repeat(64) },
      },
      shared: [{ path: "/srv/a", tag: "a" }],
    },
  }]);
  assert.equal(
    toml,
    `# A header.

[repositories.acme."my.repo".machines.m]
extends = ["small", "debian"]
cpus = 2
shared = [{ path = "/srv/a", tag = "a" }]

[repositories.acme."my.repo".machines.m.setup_template]
path = "/etc/forrest/templates/generic"

[repositories.acme."my.repo".machines.m.setup_template.parameters]
RUNNER_VERSION = "2.318.0"
RUNNER_HASH = "${"0".repeat(64)}"
`,
  );
  assert.deepEqual(
    plain(parse(toml)),
    {
      repositories: {
        acme: {
          "my.repo": {
            machines: {
              m: {
                extends: ["small", "debian"],
                cpus: 2,
                shared: [{ path: "/srv/a", tag: "a" }],
                setup_template: {
                  path: "/etc/forrest/templates/generic",
                  parameters: {
                    RUNNER_VERSION: "2.318.0",
                    RUNNER_HASH: "0".repeat(64),
                  },
                },
              },
            },
          },
        },
      },
    },
  );
});

Deno.test("writeToml() breaks long lists into one item a line", () => {
  const long = "/srv/a-rather-long-path-to-a-shared-folder";
  const toml = writeToml([], [{
    path: ["m"],
    table: { shared: [{ path: long, tag: "a" }, { path: long, tag: "b" }] },
  }]);
  assert.equal(
    toml,
    `[m]
shared = [
  { path = "${long}", tag = "a" },
  { path = "${long}", tag = "b" },
]
`,
  );
  assert.equal((parse(toml).m as { shared: unknown[] }).shared.length, 2);
});

Deno.test("writeToml() puts notes above their key, wrapped", () => {
  const toml = writeToml([], [{
    path: ["m"],
    table: {
      use_base: "never",
      network_interfaces: [{ type: "vde", path: "/run/vde.ctl" }],
      setup_template: { path: "t" },
    },
    notes: [
      note([], "about the machine"),
      note(
        ["use_base"],
        `a note long enough to be wrapped ${"word ".repeat(14)}end`,
      ),
      note(["setup_template", "path"], "relative"),
    ],
    comments: { use_base: ["a plain comment"] },
  }]);
  assert.equal(
    toml,
    `# NOTE: about the machine
[m]
# a plain comment
# NOTE: a note long enough to be wrapped word word word word word word word word
#   word word word word word word end
use_base = "never"
network_interfaces = [{ type = "vde", path = "/run/vde.ctl" }]

[m.setup_template]
# NOTE: relative
path = "t"
`,
  );
  assert.deepEqual(plain(parse(toml)), {
    m: {
      use_base: "never",
      network_interfaces: [{ type: "vde", path: "/run/vde.ctl" }],
      setup_template: { path: "t" },
    },
  });
});
