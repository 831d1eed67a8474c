import assert from "node:assert/strict";
import { ConfigError } from "../problem.ts";
import { parseYamlTree, type YMap } from "./yaml_tree.ts";

function errors(yaml: string): string[] {
  try {
    parseYamlTree(yaml, "c.yaml");
  } catch (error) {
    if (error instanceof ConfigError) return error.lines;
    throw error;
  }
  assert.fail("expected errors");
}

Deno.test("parseYamlTree() makes an alias the very node its anchor names", () => {
  const tree = parseYamlTree("a: &x { k: 1 }\nb: *x\nc:\n  <<: *x\n", "c.yaml");
  assert.equal(tree.kind, "map");
  const [a, b, c] = (tree as YMap).pairs;
  assert.equal(a!.value, b!.value);
  assert.equal((a!.value as YMap).anchor, "x");
  const merge = (c!.value as YMap).pairs[0]!;
  // `<<` is a plain key here: the original's merge is done elsewhere.
  assert.equal(merge.key, "<<");
  assert.equal(merge.value, a!.value);
  assert.deepEqual([a!.line, b!.line, merge.line], [1, 2, 4]);
  assert.deepEqual(merge.path, ["c", "<<"]);
});

Deno.test("parseYamlTree() reads scalars as YAML 1.2 core does", () => {
  const tree = parseYamlTree(
    "s: 2.318.0\nn: 4\nf: 1.5\nb: true\nz: ~\nq: '4'\nyes: yes\n",
    "c.yaml",
  ) as YMap;
  assert.deepEqual(
    tree.pairs.map((
      pair,
    ) => [pair.key, pair.value.kind === "scalar" && pair.value.value]),
    [["s", "2.318.0"], ["n", 4], ["f", 1.5], ["b", true], ["z", null], [
      "q",
      "4",
    ], ["yes", "yes"]],
  );
});

Deno.test("parseYamlTree() reads an empty document as null", () => {
  assert.deepEqual(parseYamlTree("# nothing\n", "c.yaml"), {
    kind: "scalar",
    value: null,
    line: 1,
  });
});

Deno.test("parseYamlTree() reports the first syntax error with line and column", () => {
  assert.deepEqual(errors("a: 1\n b: 2\n"), [
    "c.yaml:1:4: YAML syntax error: nested mappings are not allowed in compact mappings",
  ]);
  assert.deepEqual(errors("a: 1\n---\nb: 2\n"), [
    "c.yaml:2:1: YAML syntax error: source contains multiple documents; please use YAML.parseAllDocuments()",
  ]);
});

Deno.test("parseYamlTree() reports a duplicate key, which the original refused too", () => {
  assert.deepEqual(errors("a: 1\na: 2\n"), [
    "c.yaml:2:1: YAML syntax error: duplicate key: map keys must be unique",
  ]);
});

Deno.test("parseYamlTree() reports unknown anchors, aliases inside their own node, and custom tags", () => {
  assert.deepEqual(errors("a: *nope\n"), [
    'c.yaml:1: a: unknown anchor "*nope"',
  ]);
  assert.deepEqual(errors("a: &x\n  b: *x\n"), [
    'c.yaml:2: a.b: alias "*x" stands inside the node it names',
  ]);
  assert.deepEqual(errors("a: !vde x\n"), [
    "c.yaml:1:4: YAML syntax error: unresolved tag: !vde (forrest's config has no custom tags)",
  ]);
});
