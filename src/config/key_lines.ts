/**
 * Finds the line on which every key of a TOML document stands.
 *
 * smol-toml gives values without positions, yet every config problem must
 * name its line. This is a scanner, not a parser: it runs only on documents
 * smol-toml has already accepted, follows the grammar just far enough to know
 * which key path each `key =`, `[table]`, `[[array]]` and array element
 * belongs to, and never judges validity. If it meets something it does not
 * follow, it stops, and lookups fall back to the nearest known ancestor.
 */

import type { KeyPath } from "./key_path.ts";

/** Lines (1-based) of the keys in one TOML document. */
export class KeyLines {
  readonly #lines: ReadonlyMap<string, number>;

  constructor(lines: ReadonlyMap<string, number>) {
    this.#lines = lines;
  }

  /**
   * The line of `path`, or of its nearest ancestor that has one (a missing
   * key is reported on the line of the table that should hold it); 1 for the
   * document itself.
   */
  lineOf(path: KeyPath): number {
    for (let end = path.length; end > 0; end--) {
      const line = this.#lines.get(pathKey(path.slice(0, end)));
      if (line !== undefined) return line;
    }
    return 1;
  }
}

/** Scans `source` (valid TOML) and returns where its keys stand. */
export function locateKeys(source: string): KeyLines {
  const lines = new Map<string, number>();
  try {
    new Scanner(source, lines).document();
  } catch (error) {
    if (!(error instanceof ScanStop)) throw error;
  }
  return new KeyLines(lines);
}

function pathKey(path: KeyPath): string {
  return JSON.stringify(path);
}

/** Thrown internally where the scanner no longer follows the text. */
class ScanStop extends Error {}

const BARE_KEY_CHAR = /[A-Za-z0-9_-]/;
const SCALAR_CHAR = /[A-Za-z0-9_:.+-]/;

class Scanner {
  #src: string;
  #pos = 0;
  #line = 1;
  #lines: Map<string, number>;
  /** How many elements each array of tables has so far. */
  #arrayTables = new Map<string, number>();
  #table: (string | number)[] = [];

  constructor(src: string, lines: Map<string, number>) {
    this.#src = src;
    this.#lines = lines;
  }

  document(): void {
    while (this.#pos < this.#src.length) {
      this.#skipBlank(true);
      if (this.#pos >= this.#src.length) break;
      if (this.#peek() === "[") this.#header();
      else this.#keyValue(this.#table);
    }
  }

  #header(): void {
    const line = this.#line;
    const isArray = this.#src.startsWith("[[", this.#pos);
    this.#pos += isArray ? 2 : 1;
    const keys = this.#key();
    this.#pos += isArray ? 2 : 1;
    if (isArray) {
      const parent = this.#resolve(keys.slice(0, -1));
      const path = [...parent, keys[keys.length - 1]!];
      const count = this.#arrayTables.get(pathKey(path)) ?? 0;
      this.#arrayTables.set(pathKey(path), count + 1);
      this.#record(path, line);
      this.#table = [...path, count];
    } else {
      this.#table = this.#resolve(keys);
    }
    this.#record(this.#table, line);
  }

  /** Inserts the current index after each key that names an array of tables. */
  #resolve(keys: string[]): (string | number)[] {
    const path: (string | number)[] = [];
    for (const key of keys) {
      path.push(key);
      const count = this.#arrayTables.get(pathKey(path));
      if (count !== undefined) path.push(count - 1);
    }
    return path;
  }

  #keyValue(table: (string | number)[]): void {
    const line = this.#line;
    const path = [...table, ...this.#key()];
    this.#record(path, line);
    this.#skipBlank(false);
    if (this.#peek() !== "=") throw new ScanStop();
    this.#pos++;
    this.#skipBlank(false);
    this.#value(path);
  }

  /** Records `path` and every ancestor not yet seen at `line`. */
  #record(path: (string | number)[], line: number): void {
    for (let end = 1; end <= path.length; end++) {
      const key = pathKey(path.slice(0, end));
      if (!this.#lines.has(key)) this.#lines.set(key, line);
    }
  }

  #key(): string[] {
    const keys: string[] = [];
    for (;;) {
      this.#skipBlank(false);
      const c = this.#peek();
      if (c === '"' || c === "'") keys.push(this.#string());
      else {
        const start = this.#pos;
        while (BARE_KEY_CHAR.test(this.#peek())) this.#pos++;
        if (this.#pos === start) throw new ScanStop();
        keys.push(this.#src.slice(start, this.#pos));
      }
      this.#skipBlank(false);
      if (this.#peek() !== ".") return keys;
      this.#pos++;
    }
  }

  #value(path: (string | number)[]): void {
    const c = this.#peek();
    if (c === '"' || c === "'") this.#string();
    else if (c === "[") this.#array(path);
    else if (c === "{") this.#inlineTable(path);
    else this.#scalar();
  }

  #array(path: (string | number)[]): void {
    this.#pos++;
    for (let index = 0;; index++) {
      this.#skipBlank(true);
      if (this.#peek() === "]") break;
      const element = [...path, index];
      this.#record(element, this.#line);
      this.#value(element);
      this.#skipBlank(true);
      if (this.#peek() === ",") this.#pos++;
      else if (this.#peek() !== "]") throw new ScanStop();
    }
    this.#pos++;
  }

  #inlineTable(path: (string | number)[]): void {
    this.#pos++;
    for (;;) {
      this.#skipBlank(true);
      if (this.#peek() === "}") break;
      this.#keyValue(path);
      this.#skipBlank(true);
      if (this.#peek() === ",") this.#pos++;
      else if (this.#peek() !== "}") throw new ScanStop();
    }
    this.#pos++;
  }

  /** Numbers, booleans and date-times (whose time may follow a space). */
  #scalar(): void {
    const start = this.#pos;
    for (;;) {
      while (SCALAR_CHAR.test(this.#peek())) this.#pos++;
      const spacedTime = this.#peek() === " " &&
        /\d/.test(this.#src[this.#pos + 1] ?? "") &&
        /^\d{4}-\d{2}-\d{2}$/.test(this.#src.slice(start, this.#pos));
      if (!spacedTime) break;
      this.#pos++;
    }
    if (this.#pos === start) throw new ScanStop();
  }

  /** Skips a string of any of the four kinds and returns its raw content. */
  #string(): string {
    const quote = this.#peek();
    const multi = this.#src.startsWith(quote.repeat(3), this.#pos);
    const delimiter = multi ? quote.repeat(3) : quote;
    this.#pos += delimiter.length;
    const start = this.#pos;
    for (;;) {
      if (this.#pos >= this.#src.length) throw new ScanStop();
      const c = this.#src[this.#pos]!;
      if (c === "\\" && quote === '"') {
        this.#pos += 2;
        continue;
      }
      if (this.#src.startsWith(delimiter, this.#pos)) {
        // A multi-line string may end in up to two extra quotes: `""""""`.
        let end = this.#pos;
        while (multi && this.#src[end + 3] === quote) end++;
        const content = this.#src.slice(start, end);
        this.#pos = end + delimiter.length;
        return quote === '"' ? unescapeBasic(content) : content;
      }
      if (c === "\n") this.#line++;
      this.#pos++;
    }
  }

  #skipBlank(newlines: boolean): void {
    for (;;) {
      const c = this.#peek();
      if (c === " " || c === "\t" || c === "\r") this.#pos++;
      else if (c === "#") {
        while (this.#pos < this.#src.length && this.#peek() !== "\n") {
          this.#pos++;
        }
      } else if (c === "\n" && newlines) {
        this.#line++;
        this.#pos++;
      } else return;
    }
  }

  #peek(): string {
    return this.#src[this.#pos] ?? "";
  }
}

/** Unescapes a basic string the way TOML does, for quoted keys. */
function unescapeBasic(raw: string): string {
  try {
    return JSON.parse(
      `"${
        raw.replace(/\\U([0-9A-Fa-f]{8})/g, (_, hex: string) => {
          const cp = String.fromCodePoint(parseInt(hex, 16));
          return JSON.stringify(cp).slice(1, -1);
        })
      }"`,
    ) as string;
  } catch {
    return raw;
  }
}
