import assert from "node:assert/strict";
import type { ConfigProblem } from "../problem.ts";
import { mergeLevel, resolveDocument } from "./original_merge.ts";
import { parseYamlTree, type YValue } from "./yaml_tree.ts";

/** A tree as plain data, for comparing. */
function plain(value: YValue): unknown {
  if (value.kind === "scalar") return value.value;
  if (value.kind === "seq") return value.items.map(plain);
  return Object.fromEntries(
    value.pairs.map((pair) => [String(pair.key), plain(pair.value)]),
  );
}

function resolved(yaml: string): unknown {
  const problems: ConfigProblem[] = [];
  const value = resolveDocument(parseYamlTree(yaml, "c.yaml"), problems);
  assert.deepEqual(problems, []);
  return plain(value);
}

Deno.test("resolveDocument() lets own keys win over merged ones, and the earlier merged mapping over the later", () => {
  assert.deepEqual(
    resolved(`
.a: &a { x: a, y: a, z: a }
.b: &b { x: b, y: b, w: b }
m: { <<: [*a, *b], x: own }
`),
    { m: { x: "own", y: "a", z: "a", w: "b" } },
  );
});

Deno.test("resolveDocument() resolves a mapping that merges one that merges another", () => {
  assert.deepEqual(
    resolved(`
.s:
  a: &a { x: a, y: a, z: a }
  b: &b { <<: *a, y: b }
  c: &c { <<: *b, z: c }
m: *c
`),
    { m: { z: "c", y: "b", x: "a" } },
  );
});

Deno.test("resolveDocument() takes only the first nested merge of a merge list, as yaml_serde does", () => {
  // Both x and y merge something; y's `<<` arrives after x's and is dropped.
  assert.deepEqual(
    resolved(`
.s:
  p: &p { from_p: 1 }
  q: &q { from_q: 1 }
  x: &x { <<: *p, x: 1 }
  y: &y { <<: *q, y: 1 }
m: { <<: [*x, *y] }
`),
    { m: { x: 1, y: 1, from_p: 1 } },
  );
});

Deno.test("resolveDocument() drops .-keys through mappings but not inside lists, and *_snippets only at the top", () => {
  assert.deepEqual(
    resolved(`
machine_snippets: { a: 1 }
.hidden: 1
m:
  .note: 1
  t: { .deeper: 1, kept: 1 }
  list: [{ .in_a_list: 1 }]
  other_snippets: kept below the top
`),
    {
      m: {
        t: { kept: 1 },
        list: [{ ".in_a_list": 1 }],
        other_snippets: "kept below the top",
      },
    },
  );
});

Deno.test("resolveDocument() reports merging a list of lists or a scalar", () => {
  const problems: ConfigProblem[] = [];
  resolveDocument(
    parseYamlTree("a: { <<: [[1]] }\nb: { <<: x }\n", "c.yaml"),
    problems,
  );
  assert.deepEqual(problems.map((p) => [p.line, p.path, p.message]), [
    [1, ["a", "<<", 0], "expected a mapping to merge, found a list"],
    [
      2,
      ["b", "<<"],
      'expected a mapping or a list of mappings to merge, found "x"',
    ],
  ]);
});

Deno.test("mergeLevel() merges one mapping's keys and leaves their values unmerged", () => {
  const tree = parseYamlTree(
    `
.t: &t { inner: 1 }
.a: &a { k: { <<: *t }, from_a: 1 }
.b: &b { <<: *a, from_b: 1 }
m: { <<: *b, own: 1 }
`,
    "c.yaml",
  );
  assert.equal(tree.kind, "map");
  const m = tree.kind === "map" ? tree.pairs.at(-1)!.value : tree;
  assert.equal(m.kind, "map");
  if (m.kind !== "map") return;
  assert.deepEqual(plain(mergeLevel(m)), {
    own: 1,
    from_b: 1,
    k: { "<<": { inner: 1 } },
    from_a: 1,
  });
});
