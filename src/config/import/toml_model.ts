/** What the importer writes: TOML values, and notes on where they came from. */

import type { KeyPath } from "../key_path.ts";

export type TomlValue =
  | string
  | number
  | boolean
  | readonly TomlValue[]
  | TomlTable;

export interface TomlTable {
  readonly [key: string]: TomlValue;
}

/**
 * Something a user moving over should know, at a place in their YAML: a
 * meaning that differs, a key Forrest does not have yet.
 */
export interface ImportNote {
  readonly level: "note" | "warning";
  /** The YAML line the note is about. */
  readonly line: number;
  /** The YAML key the note is about, where it is written. */
  readonly path: KeyPath;
  readonly message: string;
}

/** A note on a TOML table, above the key it is about (`[]`: the header). */
export interface PlacedNote extends ImportNote {
  readonly at: KeyPath;
}

/** A table to write, with its notes. */
export interface Layer {
  readonly table: TomlTable;
  readonly notes: readonly PlacedNote[];
}

export function isTomlTable(value: TomlValue | undefined): value is TomlTable {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Deep equality of TOML values; key order does not matter. */
export function sameToml(a: TomlValue, b: TomlValue): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length &&
      a.every((item, index) => sameToml(item, b[index]!));
  }
  if (isTomlTable(a) || isTomlTable(b)) {
    if (!isTomlTable(a) || !isTomlTable(b)) return false;
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length &&
      keys.every((key) => key in b && sameToml(a[key]!, b[key]!));
  }
  return a === b;
}
