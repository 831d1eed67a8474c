/**
 * `forrest config import`: a config of the original forrest (YAML) as
 * Forrest's TOML, with the same machines and values, and notes wherever
 * Forrest means something else. Pure: text in, text and notes out.
 */

import { formatKeyPath } from "../key_path.ts";
import { ConfigError, type ConfigProblem } from "../problem.ts";
import { readOriginalConfig } from "./original_config.ts";
import { resolveDocument } from "./original_merge.ts";
import { planImport } from "./plan.ts";
import type { ImportNote, PlacedNote } from "./toml_model.ts";
import { type TomlSection, writeToml } from "./toml_writer.ts";
import { parseYamlTree } from "./yaml_tree.ts";

export type { ImportNote } from "./toml_model.ts";

export interface ImportConfigOptions {
  /** The YAML file's name as the user gave it, for messages and the header. */
  readonly file: string;
}

export interface ImportResult {
  readonly toml: string;
  /** Every note once, in YAML line order. */
  readonly notes: readonly ImportNote[];
}

/**
 * Turns the original's YAML config into Forrest's TOML.
 *
 * @throws {ConfigError} when the YAML cannot be read, or the original would
 *   have refused it (unknown keys, wrong types, missing keys), listing every
 *   problem with its line
 */
export function importConfig(
  text: string,
  options: ImportConfigOptions,
): ImportResult {
  const tree = parseYamlTree(text, options.file);
  const problems: ConfigProblem[] = [];
  const resolved = resolveDocument(tree, problems);
  const original = problems.length === 0
    ? readOriginalConfig(resolved, problems)
    : undefined;
  if (!original) throw new ConfigError(options.file, sortByLine(problems));
  const plan = planImport(tree, original);
  const sections: TomlSection[] = [
    { path: ["host"], table: plan.host.table, notes: plan.host.notes },
    { path: ["github"], table: plan.github.table, notes: plan.github.notes },
    ...[...plan.snippets, ...plan.repositories].map((table) => ({
      path: table.path,
      table: table.layer.table,
      notes: table.layer.notes,
      ...(table.comments ? { comments: table.comments } : {}),
    })),
  ];
  const toml = writeToml(headerOf(options.file), sections);
  const placed = sections.flatMap((section) => section.notes ?? []);
  return { toml, notes: uniqueNotes(placed) };
}

/** `FILE:LINE: note: key.path: message`, the shape compilers use. */
export function formatImportNote(file: string, note: ImportNote): string {
  const key = note.path.length > 0 ? ` ${formatKeyPath(note.path)}:` : "";
  return `${file}:${note.line}: ${note.level}:${key} ${note.message}`;
}

function headerOf(file: string): string[] {
  const name = file.split("/").pop() ?? file;
  return [
    `Imported from ${name} by \`forrest config import\`: every machine`,
    "has the values forrest's YAML config gave it, and NOTE comments mark",
    "where Forrest means something else. docs/config.md describes every",
    "key; check the file with `forrest config check FILE`.",
  ];
}

function uniqueNotes(notes: readonly PlacedNote[]): ImportNote[] {
  const seen = new Set<string>();
  const unique: ImportNote[] = [];
  for (const { at: _at, ...note } of notes) {
    const key = `${note.line}\0${note.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(note);
  }
  return unique.toSorted((a, b) => a.line - b.line);
}

function sortByLine(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.toSorted((a, b) => (a.line ?? 0) - (b.line ?? 0));
}
