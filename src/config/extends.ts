/**
 * `extends`: a machine (or snippet) takes the keys of the snippets it names,
 * in order, each snippet first resolved through its own `extends`; later
 * snippets win over earlier ones and the machine's own keys win over all.
 * Tables (`setup_template`, its `parameters`) merge key by key; arrays and
 * other values are replaced whole.
 *
 * Each merged key remembers where it was written, so that a problem found
 * after merging (a RAM size over the budget, say) points at the line that
 * set it, even inside a snippet.
 */

import type { KeyPath } from "./key_path.ts";
import type { RawMachine, RawProblem } from "./schema.ts";
import { isTable } from "./schema.ts";
import { didYouMean } from "./suggest.ts";

/** A machine's keys after `extends`, and where each top-level key came from. */
export interface Expanded {
  readonly value: Readonly<Omit<RawMachine, "extends">>;
  readonly origin: ReadonlyMap<string, KeyPath>;
}

export interface SnippetSource {
  readonly raw: Partial<RawMachine>;
  readonly path: KeyPath;
}

/** Expands machines against one set of snippets, each snippet once. */
export class SnippetExpander {
  readonly #snippets: ReadonlyMap<string, SnippetSource>;
  readonly #problems: RawProblem[];
  readonly #done = new Map<string, Expanded>();
  readonly #active: string[] = [];

  constructor(
    snippets: ReadonlyMap<string, SnippetSource>,
    problems: RawProblem[],
  ) {
    this.#snippets = snippets;
    this.#problems = problems;
  }

  /** Expands every snippet, so that problems in unused ones are found too. */
  expandAllSnippets(): void {
    for (const name of this.#snippets.keys()) this.#snippet(name);
  }

  expand(raw: Partial<RawMachine>, path: KeyPath): Expanded {
    const value: Record<string, unknown> = {};
    const origin = new Map<string, KeyPath>();
    (raw.extends ?? []).forEach((name, index) => {
      const at = [...path, "extends", index];
      if (!this.#snippets.has(name)) {
        this.#problems.push({
          path: at,
          message: `unknown snippet "${name}"${
            didYouMean(name, this.#snippets.keys())
          }`,
        });
        return;
      }
      if (this.#active.includes(name)) {
        const loop = [...this.#active.slice(this.#active.indexOf(name)), name];
        this.#problems.push({
          path: at,
          message: `snippets extend each other in a loop: ${loop.join(" → ")}`,
        });
        return;
      }
      const snippet = this.#snippet(name);
      if (snippet) mergeInto(value, origin, snippet.value, snippet.origin);
    });
    const own: Record<string, unknown> = {};
    const ownOrigin = new Map<string, KeyPath>();
    for (const [key, keyValue] of Object.entries(raw)) {
      if (key === "extends" || keyValue === undefined) continue;
      own[key] = keyValue;
      ownOrigin.set(key, [...path, key]);
    }
    mergeInto(value, origin, own, ownOrigin);
    return { value, origin };
  }

  #snippet(name: string): Expanded | undefined {
    const done = this.#done.get(name);
    if (done) return done;
    const source = this.#snippets.get(name);
    if (!source) return undefined;
    this.#active.push(name);
    const expanded = this.expand(source.raw, source.path);
    this.#active.pop();
    this.#done.set(name, expanded);
    return expanded;
  }
}

function mergeInto(
  target: Record<string, unknown>,
  targetOrigin: Map<string, KeyPath>,
  source: Readonly<Record<string, unknown>>,
  sourceOrigin: ReadonlyMap<string, KeyPath>,
): void {
  for (const [key, value] of Object.entries(source)) {
    target[key] = deepMerge(target[key], value);
    const from = sourceOrigin.get(key);
    if (from) targetOrigin.set(key, from);
  }
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (!isTable(base) || !isTable(over)) return over;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    merged[key] = deepMerge(merged[key], value);
  }
  return merged;
}
