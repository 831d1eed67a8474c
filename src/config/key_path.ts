/** A path into the config document: table keys and array indices. */
export type KeyPath = readonly (string | number)[];

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

/**
 * Writes a path the way a user would write it in TOML: dotted bare keys,
 * quoted keys where needed, array indices in brackets
 * (`repositories.acme."odd.name".machines.m.shared[0].tag`).
 */
export function formatKeyPath(path: KeyPath): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") {
      out += `[${part}]`;
      continue;
    }
    const key = BARE_KEY.test(part) ? part : JSON.stringify(part);
    out += out === "" ? key : `.${key}`;
  }
  return out;
}
