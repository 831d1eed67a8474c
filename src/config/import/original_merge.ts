/**
 * How the original resolved its YAML before reading it, step by step as it
 * did (its `src/config.rs` at 7a95060, with `yaml_serde::Value::apply_merge`):
 *
 * 1. Merge passes until no mapping holds `<<` any more. A pass walks the
 *    whole tree; a mapping with `<<` takes each key of the merged mapping(s)
 *    it does not have yet (its own keys win; in `<<: [*a, *b]` the earlier
 *    mapping wins), then the pass goes on into its values. A merged mapping
 *    that merged another brings its own `<<` along, which the next pass
 *    resolves: that is what makes nested merges work.
 * 2. Top-level keys ending in `_snippets` are dropped.
 * 3. Keys starting with `.` are dropped at any depth (through mappings).
 *
 * Quirks are kept on purpose, so that every value comes out as the original
 * computed it: in `<<: [*a, *b]` where both `a` and `b` merge something
 * themselves, only `a`'s `<<` is taken (`b`'s is a key the mapping already
 * has), and the search for `<<` that decides on another pass does not look
 * into lists.
 */

import type { KeyPath } from "../key_path.ts";
import type { ConfigProblem } from "../problem.ts";
import { MERGE_KEY, type YMap, type YPair, type YValue } from "./yaml_tree.ts";

/** Aliases can nest; a document that expands beyond this is refused. */
const MAX_NODES = 1_000_000;

/**
 * The whole document as the original read it: merged, `*_snippets` and
 * `.`-keys dropped. Merge errors (merging a list of lists, a scalar) go to
 * `problems`, as the original stopped at the first.
 */
export function resolveDocument(
  root: YValue,
  problems: ConfigProblem[],
): YValue {
  const merged = mergeAll(root, [], problems);
  return dropDotKeys(dropSnippetTables(merged));
}

/**
 * One mapping resolved on its own as the original would (merges, then
 * `.`-keys dropped), or undefined where that fails: for a snippet, or a
 * machine's own keys.
 */
export function resolveNode(node: YValue): YValue | undefined {
  const problems: ConfigProblem[] = [];
  const merged = mergeAll(node, [], problems);
  return problems.length > 0 ? undefined : dropDotKeys(merged);
}

function mergeAll(
  root: YValue,
  path: KeyPath,
  problems: ConfigProblem[],
): YValue {
  const budget = { nodes: 0 };
  let value = root;
  while (containsMerge(value)) {
    try {
      value = mergePass(value, path, problems, budget);
    } catch (error) {
      if (!(error instanceof TooLarge)) throw error;
      problems.push({
        line: root.line,
        path,
        message: `merging expands to more than ${MAX_NODES} values ` +
          "(aliases nested too deep)",
      });
      return value;
    }
    if (problems.length > 0) return value;
  }
  return value;
}

/** The original looks for `<<` only through mappings, not into lists. */
function containsMerge(value: YValue): boolean {
  return value.kind === "map" &&
    value.pairs.some((pair) =>
      pair.key === MERGE_KEY || containsMerge(pair.value)
    );
}

class TooLarge extends Error {}

function mergePass(
  value: YValue,
  path: KeyPath,
  problems: ConfigProblem[],
  budget: { nodes: number },
): YValue {
  if (++budget.nodes > MAX_NODES) throw new TooLarge();
  if (value.kind === "seq") {
    return {
      kind: "seq",
      line: value.line,
      items: value.items.map((item, index) =>
        mergePass(item, [...path, index], problems, budget)
      ),
    };
  }
  if (value.kind === "scalar") return value;
  const pairs = mergeOnce(value, path, problems);
  return {
    kind: "map",
    line: value.line,
    pairs: pairs.map((pair) => ({
      ...pair,
      value: mergePass(
        pair.value,
        [...path, String(pair.key)],
        problems,
        budget,
      ),
    })),
  };
}

/**
 * Removes the mapping's `<<` and adds the keys of what it merges that the
 * mapping does not have yet; the values are not touched.
 */
function mergeOnce(
  map: YMap,
  path: KeyPath,
  problems: ConfigProblem[],
): YPair[] {
  const index = map.pairs.findIndex((pair) => pair.key === MERGE_KEY);
  if (index < 0) return [...map.pairs];
  const merge = map.pairs[index]!;
  const pairs = map.pairs.filter((_, i) => i !== index);
  for (const source of mergedMappings(merge, path, problems)) {
    for (const pair of source.pairs) {
      if (!pairs.some((own) => own.key === pair.key)) pairs.push(pair);
    }
  }
  return pairs;
}

/** The mappings a `<<` pair merges, in order; problems for anything else. */
function mergedMappings(
  merge: YPair,
  path: KeyPath,
  problems: ConfigProblem[],
): YMap[] {
  const at = [...path, MERGE_KEY];
  const value = merge.value;
  if (value.kind === "map") return [value];
  if (value.kind === "scalar") {
    problems.push({
      line: merge.line,
      path: at,
      message: "expected a mapping or a list of mappings to merge, found " +
        describeYaml(value),
    });
    return [];
  }
  const maps: YMap[] = [];
  value.items.forEach((item, index) => {
    if (item.kind === "map") maps.push(item);
    else {
      problems.push({
        line: item.line,
        path: [...at, index],
        message: `expected a mapping to merge, found ${describeYaml(item)}`,
      });
    }
  });
  return maps;
}

/**
 * The keys of one mapping after its own merges, as the original would have
 * them, with their values still unmerged: what a machine or a repository
 * table holds. Problems in the merges are ignored here: resolveDocument()
 * reports them.
 */
export function mergeLevel(map: YMap): YMap {
  let current: YMap = map;
  // Each round takes one `<<`; merged mappings may bring another.
  for (let round = 0; round < MAX_NODES; round++) {
    if (!current.pairs.some((pair) => pair.key === MERGE_KEY)) break;
    current = {
      kind: "map",
      line: map.line,
      pairs: mergeOnce(current, [], []),
    };
  }
  return current;
}

/** The `<<` of a mapping, split into its own keys and what it merges. */
export interface MergeParts {
  readonly own: readonly YPair[];
  /** What `<<` names, in YAML order (the earlier wins); may hold non-maps. */
  readonly sources: readonly YValue[];
}

export function mergeParts(map: YMap): MergeParts {
  const own = map.pairs.filter((pair) => pair.key !== MERGE_KEY);
  const merge = map.pairs.find((pair) => pair.key === MERGE_KEY);
  if (!merge) return { own, sources: [] };
  const value = merge.value;
  return { own, sources: value.kind === "seq" ? value.items : [value] };
}

/** Keys the original ignores: `.`-prefixed ones, and `*_snippets` at the top. */
export function isHiddenKey(key: unknown, topLevel = false): boolean {
  return typeof key === "string" &&
    (key.startsWith(".") || (topLevel && key.endsWith("_snippets")));
}

function dropSnippetTables(root: YValue): YValue {
  if (root.kind !== "map") return root;
  return {
    ...root,
    pairs: root.pairs.filter((pair) =>
      !(typeof pair.key === "string" && pair.key.endsWith("_snippets"))
    ),
  };
}

/** Through mappings only, as the original: a list's mappings keep theirs. */
function dropDotKeys(value: YValue): YValue {
  if (value.kind !== "map") return value;
  return {
    ...value,
    pairs: value.pairs
      .filter((pair) =>
        !(typeof pair.key === "string" && pair.key.startsWith("."))
      )
      .map((pair) => ({ ...pair, value: dropDotKeys(pair.value) })),
  };
}

/** A YAML value as a user would recognise it, for messages. */
export function describeYaml(value: YValue): string {
  if (value.kind === "map") return "a mapping";
  if (value.kind === "seq") return "a list";
  if (value.value === null) return "nothing (null)";
  if (typeof value.value === "string") return JSON.stringify(value.value);
  return String(value.value);
}
