import assert from "node:assert/strict";
import { parse } from "smol-toml";
import { locateKeys } from "./key_lines.ts";

function lines(source: string) {
  parse(source); // the scanner is only ever run on documents smol-toml accepts
  return locateKeys(source);
}

Deno.test("locateKeys() finds keys under table headers", () => {
  const keys = lines(`# comment
[host]
base_dir = "/srv"

ram = "4G" # trailing
[repositories.acme.app.machines.small]
cpus = 2
`);
  assert.equal(keys.lineOf(["host"]), 2);
  assert.equal(keys.lineOf(["host", "base_dir"]), 3);
  assert.equal(keys.lineOf(["host", "ram"]), 5);
  assert.equal(keys.lineOf(["repositories", "acme"]), 6);
  assert.equal(
    keys.lineOf(["repositories", "acme", "app", "machines", "small", "cpus"]),
    7,
  );
});

Deno.test("locateKeys() falls back to the nearest ancestor for missing keys", () => {
  const keys = lines(`\n\n[host]\nram = "1G"\n`);
  assert.equal(keys.lineOf(["host", "base_dir"]), 3);
  assert.equal(keys.lineOf(["server", "listen"]), 1);
  assert.equal(keys.lineOf([]), 1);
});

Deno.test("locateKeys() follows dotted and quoted keys", () => {
  const keys = lines(`[repositories]
acme."odd.repo".persistence_token = "x"
'lit'.machines.m = { cpus = 1 }
`);
  assert.equal(
    keys.lineOf(["repositories", "acme", "odd.repo", "persistence_token"]),
    2,
  );
  assert.equal(
    keys.lineOf(["repositories", "lit", "machines", "m", "cpus"]),
    3,
  );
});

Deno.test("locateKeys() counts lines inside multi-line strings and arrays", () => {
  const keys = lines(`a = """
line "quoted" \\"""
two"""
b = '''
x'''
c = [
  1,
  # comment ]
  { path = "/x", tag = "t" },
  [ "nested" ],
]
d = 1979-05-27 07:32:00Z
e = true
`);
  assert.equal(keys.lineOf(["b"]), 4);
  assert.equal(keys.lineOf(["c"]), 6);
  assert.equal(keys.lineOf(["c", 0]), 7);
  assert.equal(keys.lineOf(["c", 1, "tag"]), 9);
  assert.equal(keys.lineOf(["c", 2, 0]), 10);
  assert.equal(keys.lineOf(["d"]), 12);
  assert.equal(keys.lineOf(["e"]), 13);
});

Deno.test("locateKeys() indexes arrays of tables", () => {
  const keys = lines(`[[shared]]
path = "/a"
[[shared]]
path = "/b"
[[shared.sub]]
x = 1
`);
  assert.equal(keys.lineOf(["shared", 0, "path"]), 2);
  assert.equal(keys.lineOf(["shared", 1, "path"]), 4);
  assert.equal(keys.lineOf(["shared", 1, "sub", 0, "x"]), 6);
});

Deno.test("locateKeys() handles escapes in quoted keys and strings", () => {
  const keys = lines(`"a\\"b" = "c\\\\"\n"\\u00e9" = '''it's'''\nnext = 1\n`);
  assert.equal(keys.lineOf(['a"b']), 1);
  assert.equal(keys.lineOf(["é"]), 2);
  assert.equal(keys.lineOf(["next"]), 3);
});
