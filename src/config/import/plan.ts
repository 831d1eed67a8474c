/**
 * How the imported config is laid out: which YAML anchors become
 * `[snippets.NAME]`, what each machine `extends`, and which tables are
 * written out in full because `extends` cannot say what the merges said.
 *
 * A mapping that machines (or other snippets) merge through an alias
 * (`<<: *name`) becomes a snippet named after its anchor; the merge list is
 * reversed into `extends`, since in YAML the earlier mapping wins and in
 * `extends` the later one. Merges anywhere else (inside `setup_template`,
 * of a mapping written inline, of an anchor that holds more than machine
 * keys) are resolved in place.
 *
 * Every table is checked before it is written: what Forrest's own snippet
 * expansion makes of it must equal what the original computed. Where it
 * does not (YAML replaces a merged `setup_template` whole while `extends`
 * merges tables key by key; an explicit `null` hides a merged key; the
 * original's quirks with nested merge lists), the table is written out in
 * full instead, with a note.
 */

import {
  type Expanded,
  SnippetExpander,
  type SnippetSource,
} from "../extends.ts";
import type { KeyPath } from "../key_path.ts";
import type { RawMachine, RawProblem } from "../schema.ts";
import {
  isHiddenKey,
  mergeLevel,
  mergeParts,
  resolveNode,
} from "./original_merge.ts";
import {
  type OriginalConfig,
  type OriginalMachine,
  type OriginalRepository,
  readMachine,
} from "./original_config.ts";
import {
  type Layer,
  type PlacedNote,
  sameToml,
  type TomlTable,
  type TomlValue,
} from "./toml_model.ts";
import { MERGE_KEY, type YMap, type YValue } from "./yaml_tree.ts";

/** A table of the output, in the order it is written. */
export interface PlannedTable {
  readonly path: KeyPath;
  readonly layer: Layer;
  /** Comments above keys that are not notes: where an `extends` came from. */
  readonly comments?: Readonly<Record<string, readonly string[]>>;
}

export interface ImportPlan {
  readonly host: Layer;
  readonly github: Layer;
  readonly snippets: readonly PlannedTable[];
  /** Repository tables and machine tables, in YAML order. */
  readonly repositories: readonly PlannedTable[];
}

/** How one machine or snippet is written. */
interface Written {
  /** Its own keys, with `extends` first. */
  readonly table: TomlTable;
  readonly notes: readonly PlacedNote[];
  readonly extends: readonly string[];
  readonly comments?: Readonly<Record<string, readonly string[]>>;
}

interface Snippet extends Written {
  readonly name: string;
  /** The anchored mapping it comes from. */
  readonly node: YMap;
}

/**
 * Lays out `original` (the config as the original read it), using `tree`
 * (the YAML before merging) to find what was shared.
 */
export function planImport(tree: YValue, original: OriginalConfig): ImportPlan {
  const planner = new Planner(tree);
  const repositories: PlannedTable[] = [];
  const caseNotes = caseNotesOf(original.repositories);
  for (const repository of original.repositories) {
    const path = ["repositories", repository.owner, repository.repo];
    const notes = caseNotes.get(repository) ?? [];
    const table: Record<string, TomlValue> = {};
    if (repository.persistenceToken !== undefined) {
      table.persistence_token = repository.persistenceToken;
    }
    if (
      Object.keys(table).length > 0 || notes.length > 0 ||
      repository.machines.length === 0
    ) {
      repositories.push({ path, layer: { table, notes } });
    }
    for (const machine of repository.machines) {
      repositories.push(planner.machine(repository, machine));
    }
  }
  return {
    host: original.host,
    github: original.github,
    snippets: planner.usedSnippets(),
    repositories,
  };
}

class Planner {
  /** Each machine's mapping before its own merges, by "owner/repo/name". */
  readonly #machineNodes: ReadonlyMap<string, YValue>;
  readonly #names: ReadonlyMap<YMap, string>;
  readonly #order: readonly YMap[];
  /** Where each mapping is written in the YAML, for notes. */
  readonly #writtenAt: ReadonlyMap<YMap, KeyPath>;
  readonly #snippets = new Map<YMap, Snippet | undefined>();
  readonly #deciding = new Set<YMap>();
  readonly #byName = new Map<string, Snippet>();
  readonly #used = new Set<string>();
  /** How often each node is a machine's whole value (`b: *a`). */
  readonly #machineUses = new Map<YValue, number>();
  readonly #mergeUses = new Set<YValue>();

  constructor(tree: YValue) {
    this.#machineNodes = findMachineNodes(tree);
    for (const node of this.#machineNodes.values()) {
      this.#machineUses.set(node, (this.#machineUses.get(node) ?? 0) + 1);
    }
    const maps = allMaps(tree);
    this.#writtenAt = maps;
    this.#order = [...maps.keys()].filter((map) => map.anchor !== undefined);
    this.#names = snippetNames(this.#order);
    for (const node of maps.keys()) {
      for (const source of mergeParts(node).sources) {
        this.#mergeUses.add(source);
      }
    }
  }

  machine(
    repository: OriginalRepository,
    machine: OriginalMachine,
  ): PlannedTable {
    const path = [
      "repositories",
      repository.owner,
      repository.repo,
      "machines",
      machine.name,
    ];
    const place = { path, line: machine.line };
    const node = this.#machineNodes.get(
      `${repository.owner}\0${repository.repo}\0${machine.name}`,
    );
    const exact = machine.layer;
    let written: Written | undefined;
    if (node?.kind === "map") {
      const self = this.#reused(node) ? this.#snippet(node) : undefined;
      written = self
        ? { table: { extends: [self.name] }, notes: [], extends: [self.name] }
        : this.#layered(node, place);
      if (written && !sameToml(this.#expand(written), exact.table)) {
        written = undefined;
      }
    }
    const notes = [...(written ?? exact).notes];
    if (
      !written && node?.kind === "map" && mergeParts(node).sources.length > 0
    ) {
      notes.push(writtenOutNote(machine.line, path));
    }
    if (
      exact.table.base_image === undefined &&
      exact.table.base_machine === undefined
    ) {
      notes.push({
        level: "note",
        line: machine.line,
        path,
        at: [],
        message: "neither base_image nor base_machine: as with the original, " +
          "the machine starts only from its own image, machines/" +
          `${repository.owner}/${repository.repo}/${machine.name}.img in ` +
          "base_dir (put there by hand), and waits while there is none; " +
          "config check warns about it",
      });
    }
    for (const name of written?.extends ?? []) this.#use(name);
    return {
      path,
      layer: { table: (written ?? exact).table, notes },
      ...(written?.comments ? { comments: written.comments } : {}),
    };
  }

  /** Snippets that written tables extend, in YAML order. */
  usedSnippets(): PlannedTable[] {
    return this.#order
      .map((node) => this.#snippets.get(node))
      .filter((snippet): snippet is Snippet =>
        snippet !== undefined && this.#used.has(snippet.name)
      )
      .map((snippet) => ({
        path: ["snippets", snippet.name],
        layer: { table: snippet.table, notes: snippet.notes },
        ...(snippet.comments ? { comments: snippet.comments } : {}),
      }));
  }

  #use(name: string): void {
    if (this.#used.has(name)) return;
    this.#used.add(name);
    for (const parent of this.#byName.get(name)?.extends ?? []) {
      this.#use(parent);
    }
  }

  /** A machine's own mapping that is also merged elsewhere, or used twice. */
  #reused(node: YMap): boolean {
    return node.anchor !== undefined &&
      (this.#mergeUses.has(node) || (this.#machineUses.get(node) ?? 0) > 1);
  }

  /**
   * The snippet an anchored mapping becomes, or undefined where it cannot be
   * one: no anchor, or keys that are not all valid machine keys.
   */
  #snippet(node: YMap): Snippet | undefined {
    if (this.#snippets.has(node)) return this.#snippets.get(node);
    const name = this.#names.get(node);
    if (name === undefined || this.#deciding.has(node)) return undefined;
    const place = { path: [".snippet", name], line: node.line };
    const resolved = resolveNode(node);
    const whole = resolved &&
      readMachine(resolved, place, [], { final: false });
    if (!whole) {
      this.#snippets.set(node, undefined);
      return undefined;
    }
    this.#deciding.add(node);
    let written = this.#layered(node, place);
    this.#deciding.delete(node);
    if (!written || !sameToml(this.#expand(written), whole.table)) {
      written = {
        table: whole.table,
        notes: [
          ...whole.notes,
          writtenOutNote(node.line, this.#writtenAt.get(node) ?? []),
        ],
        extends: [],
      };
    }
    const snippet: Snippet = { name, node, ...written };
    this.#snippets.set(node, snippet);
    this.#byName.set(name, snippet);
    return snippet;
  }

  /**
   * A mapping as `extends` (its merged snippets, reversed) plus its own keys
   * (with merges of anything that is not a snippet resolved in place).
   */
  #layered(
    node: YMap,
    place: { path: KeyPath; line: number },
  ): Written | undefined {
    const { own, sources } = mergeParts(node);
    const snippets: Snippet[] = [];
    const inline: YValue[] = [];
    for (const source of sources) {
      const snippet = source.kind === "map" ? this.#snippet(source) : undefined;
      if (snippet) {
        if (!snippets.includes(snippet)) snippets.push(snippet);
      } else inline.push(source);
    }
    const ownNode: YMap = {
      kind: "map",
      line: node.line,
      pairs: inline.length === 0 ? own : [...own, {
        key: MERGE_KEY,
        line: node.line,
        path: [...place.path, MERGE_KEY],
        value: { kind: "seq", line: node.line, items: inline },
      }],
    };
    const resolved = resolveNode(ownNode);
    const layer = resolved &&
      readMachine(resolved, place, [], { final: false });
    if (!layer) return undefined;
    const names = snippets.map((snippet) => snippet.name).reverse();
    const table: Record<string, TomlValue> = names.length > 0
      ? { extends: names }
      : {};
    Object.assign(table, layer.table);
    const comments = snippets.length > 1
      ? {
        extends: [
          `was <<: [${
            snippets.map((s) => `*${s.node.anchor}`).join(", ")
          }]; reversed: in extends the later wins`,
        ],
      }
      : undefined;
    return {
      table,
      notes: layer.notes,
      extends: names,
      ...(comments ? { comments } : {}),
    };
  }

  /** What Forrest's own `extends` makes of a table. */
  #expand(written: Written): TomlTable {
    const sources = new Map<string, SnippetSource>();
    for (const [name, snippet] of this.#byName) {
      sources.set(name, {
        // The expander merges plain values; it never looks at their types.
        raw: snippet.table as unknown as Partial<RawMachine>,
        path: ["snippets", name],
      });
    }
    const problems: RawProblem[] = [];
    const expanded: Expanded = new SnippetExpander(sources, problems).expand(
      written.table as unknown as Partial<RawMachine>,
      ["machine"],
    );
    return expanded.value as unknown as TomlTable;
  }
}

function writtenOutNote(line: number, path: KeyPath): PlacedNote {
  return {
    level: "note",
    line,
    path,
    at: [],
    message: "written out in full: extends cannot say what the YAML merges " +
      "did here (a merged table or value replaced whole, or hidden by null)",
  };
}

/**
 * The mapping of every machine before its own merges, found through the
 * levels above it (which may merge too, as pengutronix's
 * `repository_snippets` do).
 */
function findMachineNodes(tree: YValue): Map<string, YValue> {
  const nodes = new Map<string, YValue>();
  const repositories = child(tree, "repositories", true);
  for (const [owner, repos] of children(repositories)) {
    for (const [repo, table] of children(repos)) {
      for (const [name, machine] of children(child(table, "machines"))) {
        nodes.set(`${owner}\0${repo}\0${name}`, machine);
      }
    }
  }
  return nodes;
}

function children(value: YValue | undefined): [string, YValue][] {
  if (value?.kind !== "map") return [];
  return mergeLevel(value).pairs
    .filter((pair) => typeof pair.key === "string" && !isHiddenKey(pair.key))
    .map((pair) => [pair.key as string, pair.value]);
}

function child(
  value: YValue | undefined,
  key: string,
  topLevel = false,
): YValue | undefined {
  if (value?.kind !== "map") return undefined;
  return mergeLevel(value).pairs.find((pair) =>
    pair.key === key && !isHiddenKey(pair.key, topLevel)
  )?.value;
}

/**
 * Every mapping in the tree once, in document order, with the YAML path
 * where it is written (an alias's target is written before the alias).
 */
function allMaps(tree: YValue): Map<YMap, KeyPath> {
  const maps = new Map<YMap, KeyPath>();
  const seen = new Set<YValue>();
  const walk = (value: YValue, path: KeyPath) => {
    if (seen.has(value)) return;
    seen.add(value);
    if (value.kind === "map") {
      maps.set(value, path);
      for (const pair of value.pairs) walk(pair.value, pair.path);
    } else if (value.kind === "seq") {
      value.items.forEach((item, index) => walk(item, [...path, index]));
    }
  };
  walk(tree, []);
  return maps;
}

/**
 * Snippet names from anchors: letters, digits, ".", "_" and "-" kept, other
 * runs of characters made "-"; an anchor defined twice gets "-2", "-3".
 */
function snippetNames(anchored: readonly YMap[]): Map<YMap, string> {
  const names = new Map<YMap, string>();
  const taken = new Set<string>();
  for (const node of anchored) {
    const base = node.anchor!.replace(/[^A-Za-z0-9_.-]+/g, "-")
      .replace(/^[-.]+|-+$/g, "") || "snippet";
    let name = base;
    for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
    taken.add(name);
    names.set(node, name);
  }
  return names;
}

/**
 * Names that differ only in case: the original matched owners and
 * repositories exactly, Forrest (as GitHub) ignores case.
 */
function caseNotesOf(
  repositories: readonly OriginalRepository[],
): Map<OriginalRepository, PlacedNote[]> {
  const notes = new Map<OriginalRepository, PlacedNote[]>();
  const add = (repository: OriginalRepository, message: string) => {
    notes.set(repository, [...(notes.get(repository) ?? []), {
      level: "note",
      line: repository.line,
      path: ["repositories", repository.owner, repository.repo],
      at: [],
      message,
    }]);
  };
  const owners = new Map<string, string>();
  const repos = new Map<string, string>();
  for (const repository of repositories) {
    const { owner, repo } = repository;
    const full = `${owner}/${repo}`;
    const earlierRepo = repos.get(full.toLowerCase());
    const earlierOwner = owners.get(owner.toLowerCase());
    if (earlierRepo !== undefined && earlierRepo !== full) {
      add(
        repository,
        `"${full}" and "${earlierRepo}" differ only in case: the original ` +
          "told them apart, Forrest ignores case as GitHub does, so config " +
          "check rejects the second: keep the spelling GitHub uses",
      );
    } else if (earlierOwner !== undefined && earlierOwner !== owner) {
      add(
        repository,
        `owner "${owner}" and "${earlierOwner}" differ only in case: the ` +
          "original matched names exactly, so only the spelling GitHub uses " +
          "got jobs; Forrest ignores case and serves both",
      );
    }
    repos.set(full.toLowerCase(), repos.get(full.toLowerCase()) ?? full);
    owners.set(owner.toLowerCase(), owners.get(owner.toLowerCase()) ?? owner);
  }
  return notes;
}
