/**
 * A YAML document as a tree the importer can merge the way the original
 * did: plain values, each with the line it was written on. An alias is the
 * very node its anchor names (shared, not copied), so that the importer can
 * tell which mappings were reused through `<<` and turn them into snippets.
 *
 * `<<` stays an ordinary key here: the merging is the original's own
 * (original_merge.ts), not the YAML library's.
 */

import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type YAMLError,
} from "yaml";
import type { KeyPath } from "../key_path.ts";
import { ConfigError, type ConfigProblem } from "../problem.ts";

export type ScalarValue = string | number | boolean | null;

export type YValue = YScalar | YSeq | YMap;

export interface YScalar {
  readonly kind: "scalar";
  readonly value: ScalarValue;
  readonly line: number;
}

export interface YSeq {
  readonly kind: "seq";
  readonly items: readonly YValue[];
  readonly line: number;
  readonly anchor?: string;
}

export interface YMap {
  readonly kind: "map";
  readonly pairs: readonly YPair[];
  readonly line: number;
  /** The anchor (`&name`) written on this mapping, if any. */
  readonly anchor?: string;
}

export interface YPair {
  /** Keys are scalars; most are strings. */
  readonly key: ScalarValue;
  /** The line of the key. */
  readonly line: number;
  /** Where the key stands in the document, for messages. */
  readonly path: KeyPath;
  readonly value: YValue;
}

/** The merge key, which the original resolves itself. */
export const MERGE_KEY = "<<";

/**
 * Parses YAML text into a tree; an empty document is a null scalar.
 *
 * @throws {ConfigError} for the first syntax error (`FILE:LINE:COLUMN: …`), aliases
 *   to unknown anchors, aliases inside their own anchor, and custom tags
 */
export function parseYamlTree(text: string, file: string): YValue {
  const lineCounter = new LineCounter();
  // Merge keys off: `<<` must reach the original's merge as a plain key.
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    merge: false,
    uniqueKeys: true,
  });
  const problems: ConfigProblem[] = [
    ...doc.errors,
    ...doc.warnings.filter((warning) => warning.code === "TAG_RESOLVE_FAILED"),
  ].map((error) => syntaxProblem(error, text, lineCounter));
  // Later syntax errors mostly follow from the first: report that one.
  if (problems.length > 0) {
    throw new ConfigError(file, sortByPlace(problems).slice(0, 1));
  }
  const builder = new TreeBuilder(doc, lineCounter);
  const root = doc.contents === null
    ? { kind: "scalar" as const, value: null, line: 1 }
    : builder.build(doc.contents as Node, []);
  if (builder.problems.length > 0) {
    throw new ConfigError(file, sortByPlace(builder.problems));
  }
  return root;
}

class TreeBuilder {
  readonly problems: ConfigProblem[] = [];
  readonly #doc: Document;
  readonly #lines: LineCounter;
  readonly #built = new Map<Node, YValue>();
  readonly #building = new Set<Node>();

  constructor(doc: Document, lines: LineCounter) {
    this.#doc = doc;
    this.#lines = lines;
  }

  build(node: Node, path: KeyPath): YValue {
    const line = this.#line(node);
    if (isAlias(node)) {
      const target = node.resolve(this.#doc) as Node | undefined;
      if (target === undefined) {
        return this.#fail(line, path, `unknown anchor "*${node.source}"`);
      }
      const built = this.#built.get(target);
      if (built) return built;
      if (this.#building.has(target)) {
        return this.#fail(
          line,
          path,
          `alias "*${node.source}" stands inside the node it names`,
        );
      }
      return this.build(target, path);
    }
    this.#building.add(node);
    const value = this.#convert(node, path, line);
    this.#building.delete(node);
    this.#built.set(node, value);
    return value;
  }

  #convert(node: Node, path: KeyPath, line: number): YValue {
    const anchor = node.anchor ? { anchor: node.anchor } : {};
    if (isMap(node)) {
      const pairs: YPair[] = [];
      for (const pair of node.items) {
        const keyNode = pair.key as Node | null;
        const keyLine = keyNode ? this.#line(keyNode) : line;
        if (keyNode !== null && !isScalar(keyNode) && !isAlias(keyNode)) {
          this.#fail(
            keyLine,
            path,
            "a key must be a plain value, not a list or mapping",
          );
          continue;
        }
        const keyValue = keyNode === null
          ? { kind: "scalar" as const, value: null, line: keyLine }
          : this.build(keyNode, path);
        if (keyValue.kind !== "scalar") {
          this.#fail(
            keyLine,
            path,
            "a key must be a plain value, not a list or mapping",
          );
          continue;
        }
        const key = keyValue.value;
        const pairPath = [...path, String(key)];
        const value = pair.value === null
          ? { kind: "scalar" as const, value: null, line: keyLine }
          : this.build(pair.value as Node, pairPath);
        pairs.push({ key, line: keyLine, path: pairPath, value });
      }
      return { kind: "map", pairs, line, ...anchor };
    }
    if (isSeq(node)) {
      const items = node.items.map((item, index) =>
        item === null
          ? { kind: "scalar" as const, value: null, line }
          : this.build(item as Node, [...path, index])
      );
      return { kind: "seq", items, line, ...anchor };
    }
    if (isScalar(node)) {
      return { kind: "scalar", value: scalarValue(node.value), line };
    }
    return this.#fail(line, path, "unsupported YAML node");
  }

  #line(node: Node): number {
    const start = node.range?.[0] ?? 0;
    return this.#lines.linePos(start).line || 1;
  }

  #fail(line: number, path: KeyPath, message: string): YScalar {
    this.problems.push({ line, path, message });
    return { kind: "scalar", value: null, line };
  }
}

function scalarValue(value: unknown): ScalarValue {
  if (
    typeof value === "string" || typeof value === "number" ||
    typeof value === "boolean" || value === null
  ) {
    return value;
  }
  if (typeof value === "bigint") return Number(value);
  return String(value);
}

function syntaxProblem(
  error: YAMLError,
  text: string,
  lines: LineCounter,
): ConfigProblem {
  const { line, col } = lines.linePos(error.pos[0]);
  let message = error.message.charAt(0).toLowerCase() + error.message.slice(1);
  if (error.code === "DUPLICATE_KEY") {
    message = text.startsWith("<<", error.pos[0])
      ? 'duplicate key "<<": forrest\'s YAML rejects it too; merge several ' +
        "mappings with one key and a list: <<: [*a, *b]"
      : "duplicate key: map keys must be unique";
  } else if (error.code === "TAG_RESOLVE_FAILED") {
    message = `${message} (forrest's config has no custom tags)`;
  }
  return {
    line: line || 1,
    column: col || 1,
    path: [],
    message: `YAML syntax error: ${message}`,
  };
}

function sortByPlace(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.toSorted((a, b) =>
    (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0)
  );
}
