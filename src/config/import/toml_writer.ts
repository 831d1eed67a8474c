/**
 * Writes tables as TOML text for people: one `[table]` per host, snippet,
 * repository and machine, short tables and lists inline, notes as `# NOTE:`
 * comments above the key they are about.
 */

import type { KeyPath } from "../key_path.ts";
import {
  isTomlTable,
  type PlacedNote,
  type TomlTable,
  type TomlValue,
} from "./toml_model.ts";

/** Lines longer than this are broken up where TOML allows it. */
const WIDTH = 80;

export interface TomlSection {
  /** The table's header; its keys are bare or quoted as needed. */
  readonly path: KeyPath;
  readonly table: TomlTable;
  readonly notes?: readonly PlacedNote[];
  /** Plain comment lines above a key. */
  readonly comments?: Readonly<Record<string, readonly string[]>>;
}

/** The document: a comment at the top, then the sections. */
export function writeToml(
  header: readonly string[],
  sections: readonly TomlSection[],
): string {
  const blocks = [header.map((line) => `# ${line}`.trimEnd()).join("\n")];
  for (const section of sections) blocks.push(...writeSection(section));
  return `${blocks.filter((block) => block !== "").join("\n\n")}\n`;
}

function writeSection(section: TomlSection): string[] {
  const notes = section.notes ?? [];
  const lines: string[] = [];
  const notesAt = (at: KeyPath) =>
    notes.filter((note) =>
      note.at.length === at.length && at.every((part, i) => note.at[i] === part)
    );
  for (const note of notesAt([])) lines.push(...noteLines(note));
  lines.push(
    `[${section.path.map((part) => tomlKey(String(part))).join(".")}]`,
  );
  const subSections: TomlSection[] = [];
  for (const [key, value] of Object.entries(section.table)) {
    const inner = notes.filter((note) =>
      note.at[0] === key && note.at.length > 1
    );
    if (isTomlTable(value) && (inner.length > 0 || !fitsInline(key, value))) {
      subSections.push({
        path: [...section.path, key],
        table: value,
        notes: notes.filter((note) => note.at[0] === key).map((note) => ({
          ...note,
          at: note.at.slice(1),
        })),
      });
      continue;
    }
    for (const comment of section.comments?.[key] ?? []) {
      lines.push(...wrap(comment, "# ", "# "));
    }
    for (const note of notesAt([key])) lines.push(...noteLines(note));
    lines.push(keyValue(key, value));
  }
  return [lines.join("\n"), ...subSections.flatMap(writeSection)];
}

function noteLines(note: PlacedNote): string[] {
  const label = note.level === "warning" ? "WARNING" : "NOTE";
  return wrap(note.message, `# ${label}: `, "#   ");
}

/** Breaks text at spaces so that lines stay within WIDTH. */
function wrap(text: string, first: string, rest: string): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of text.split(" ")) {
    if (!empty && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = rest + word;
    } else line += (empty ? "" : " ") + word;
    empty = false;
  }
  lines.push(line);
  return lines;
}

function fitsInline(key: string, table: TomlTable): boolean {
  return Object.values(table).every((value) => !isTomlTable(value)) &&
    `${tomlKey(key)} = ${inlineValue(table)}`.length <= WIDTH;
}

function keyValue(key: string, value: TomlValue): string {
  const single = `${tomlKey(key)} = ${inlineValue(value)}`;
  if (!Array.isArray(value) || single.length <= WIDTH || value.length === 0) {
    return single;
  }
  const items = value.map((item) => `  ${inlineValue(item)},`);
  return [`${tomlKey(key)} = [`, ...items, "]"].join("\n");
}

function inlineValue(value: TomlValue): string {
  if (typeof value === "string") return tomlString(value);
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (Array.isArray(value)) return `[${value.map(inlineValue).join(", ")}]`;
  const entries = Object.entries(value as TomlTable);
  if (entries.length === 0) return "{}";
  return `{ ${
    entries.map(([key, item]) => `${tomlKey(key)} = ${inlineValue(item)}`)
      .join(", ")
  } }`;
}

/** A key, bare where TOML allows it. */
export function tomlKey(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : tomlString(key);
}

/** A TOML basic string: `"…"` with the escapes TOML requires. */
export function tomlString(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === '"') out += '\\"';
    else if (char === "\\") out += "\\\\";
    else if (char === "\n") out += "\\n";
    else if (char === "\t") out += "\\t";
    else if (char === "\r") out += "\\r";
    else if (code < 0x20 || code === 0x7f) {
      out += `\\u${code.toString(16).toUpperCase().padStart(4, "0")}`;
    } else out += char;
  }
  return `${out}"`;
}
