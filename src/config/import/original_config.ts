/**
 * Reading forrest's YAML config after its merges, with the original's rules
 * (serde, `deny_unknown_fields` everywhere but `setup_template`), into
 * Forrest's keys: `jwt_key_file` becomes `private_key_file`, sizes and
 * durations are written the way Forrest reads them, and each meaning that
 * differs gets a note on the key it is about.
 */

import type { KeyPath } from "../key_path.ts";
import type { ConfigProblem } from "../problem.ts";
import { didYouMean } from "../suggest.ts";
import { describeYaml } from "./original_merge.ts";
import type { Layer, PlacedNote, TomlTable, TomlValue } from "./toml_model.ts";
import type { YPair, YValue } from "./yaml_tree.ts";

/** The keys of a machine in forrest's YAML, in the order Forrest's are written. */
export const MACHINE_KEYS = [
  "base_image",
  "base_machine",
  "use_base",
  "cpus",
  "ram",
  "disk",
  "setup_template",
  "shared",
  "artifacts",
  "network_interfaces",
] as const;

/** The original had no defaults for these. */
const REQUIRED_MACHINE_KEYS = ["setup_template", "cpus", "disk", "ram"];

const U32_MAX = 4_294_967_295;

export interface OriginalConfig {
  readonly host: Layer;
  readonly github: Layer;
  readonly repositories: readonly OriginalRepository[];
}

export interface OriginalRepository {
  readonly owner: string;
  readonly repo: string;
  /** Where the repository's key stands in the YAML. */
  readonly line: number;
  readonly persistenceToken: string | undefined;
  readonly machines: readonly OriginalMachine[];
}

export interface OriginalMachine {
  readonly name: string;
  readonly line: number;
  /** The machine as the original computed it, in Forrest's keys. */
  readonly layer: Layer;
}

/** Where a value stands: its resolved key path and the line of its key. */
interface Place {
  readonly path: KeyPath;
  readonly line: number;
}

/**
 * Reads the merged document (resolveDocument()) as the original did.
 * Returns undefined when there are problems; they are all in `problems`.
 */
export function readOriginalConfig(
  root: YValue,
  problems: ConfigProblem[],
): OriginalConfig | undefined {
  const read = new Reader(problems);
  const top = read.struct(root, { path: [], line: 1 }, [
    "github",
    "host",
    "repositories",
  ], { required: ["github", "host", "repositories"] });
  const host = top?.get("host");
  const github = top?.get("github");
  const repositories = top?.get("repositories");
  const config = {
    host: host ? read.host(host) : undefined,
    github: github ? read.github(github) : undefined,
    repositories: repositories ? read.repositories(repositories) : [],
  };
  if (problems.length > 0 || !config.host || !config.github) return undefined;
  return config as OriginalConfig;
}

/**
 * One machine's keys (a machine, or a snippet's part of one) in Forrest's
 * form. `final`: the whole machine, which must have the original's required
 * keys; otherwise any subset.
 */
export function readMachine(
  value: YValue,
  place: { path: KeyPath; line: number },
  problems: ConfigProblem[],
  options: { final: boolean },
): Layer | undefined {
  const before = problems.length;
  const layer = new Reader(problems).machine(value, place, options.final);
  return problems.length > before ? undefined : layer;
}

class Reader {
  readonly #problems: ConfigProblem[];

  constructor(problems: ConfigProblem[]) {
    this.#problems = problems;
  }

  host(pair: YPair): Layer {
    const notes: PlacedNote[] = [];
    const table: Record<string, TomlValue> = {};
    const keys = this.struct(pair.value, placeOf(pair, ["host"]), [
      "base_dir",
      "ram",
    ], { required: ["base_dir", "ram"] });
    const baseDir = keys?.get("base_dir");
    if (baseDir) {
      const text = this.string(
        baseDir.value,
        placeOf(baseDir, ["host", "base_dir"]),
      );
      if (text !== undefined) {
        table.base_dir = text;
        relativeNote(
          text,
          baseDir,
          ["base_dir"],
          notes,
          "the TOML file's folder",
        );
      }
    }
    const ram = keys?.get("ram");
    if (ram) {
      this.#set(
        table,
        "ram",
        this.size(ram.value, placeOf(ram, ["host", "ram"])),
      );
    }
    return { table, notes };
  }

  github(pair: YPair): Layer {
    const notes: PlacedNote[] = [];
    const table: Record<string, TomlValue> = {};
    const keys = this.struct(pair.value, placeOf(pair, ["github"]), [
      "app_id",
      "jwt_key_file",
      "webhook_secret",
      "polling_interval",
    ], { required: ["app_id", "jwt_key_file", "webhook_secret"] });
    const appId = keys?.get("app_id");
    if (appId) {
      this.#set(
        table,
        "app_id",
        this.uint(
          appId.value,
          placeOf(appId, ["github", "app_id"]),
          Number.MAX_SAFE_INTEGER,
        ),
      );
    }
    const keyFile = keys?.get("jwt_key_file");
    if (keyFile) {
      const text = this.string(
        keyFile.value,
        placeOf(keyFile, ["github", "jwt_key_file"]),
      );
      if (text !== undefined) {
        table.private_key_file = text;
        relativeNote(
          text,
          keyFile,
          ["private_key_file"],
          notes,
          "the TOML file's folder",
        );
      }
    }
    const secret = keys?.get("webhook_secret");
    if (secret) {
      const text = this.string(
        secret.value,
        placeOf(secret, ["github", "webhook_secret"]),
      );
      if (text !== undefined) {
        table.webhook_secret = text;
        notes.push(
          note(
            secret,
            ["webhook_secret"],
            "the webhook secret is written inline, as the original had it; " +
              'better put it in a file (mode 0600) and write webhook_secret_file = "FILE" instead',
          ),
        );
      }
    }
    const polling = keys?.get("polling_interval");
    if (polling) {
      this.#set(
        table,
        "polling_interval",
        this.duration(
          polling.value,
          placeOf(polling, ["github", "polling_interval"]),
        ),
      );
    }
    return { table, notes };
  }

  repositories(pair: YPair): OriginalRepository[] {
    const repositories: OriginalRepository[] = [];
    for (const owner of this.map(pair.value, placeOf(pair, ["repositories"]))) {
      const ownerPath = ["repositories", String(owner.key)];
      const ownerName = this.key(owner, ["repositories"]);
      const repos = this.map(owner.value, placeOf(owner, ownerPath));
      if (ownerName === undefined) continue;
      for (const repo of repos) {
        const repoName = this.key(repo, ownerPath);
        if (repoName === undefined) continue;
        const path = [...ownerPath, repoName];
        const keys = this.struct(repo.value, placeOf(repo, path), [
          "persistence_token",
          "machines",
        ], { required: ["machines"] });
        const token = keys?.get("persistence_token");
        const machines = keys?.get("machines");
        repositories.push({
          owner: ownerName,
          repo: repoName,
          line: repo.line,
          persistenceToken: token
            ? this.optionalString(
              token.value,
              placeOf(token, [...path, "persistence_token"]),
            )
            : undefined,
          machines: machines
            ? this.machines(machines, [...path, "machines"])
            : [],
        });
      }
    }
    return repositories;
  }

  machines(pair: YPair, path: KeyPath): OriginalMachine[] {
    const machines: OriginalMachine[] = [];
    for (const machine of this.map(pair.value, placeOf(pair, path))) {
      const name = this.key(machine, path);
      if (name === undefined) continue;
      const layer = this.machine(
        machine.value,
        { path: [...path, name], line: machine.line },
        true,
      );
      if (layer) machines.push({ name, line: machine.line, layer });
    }
    return machines;
  }

  machine(value: YValue, place: Place, final: boolean): Layer | undefined {
    const keys = this.struct(value, place, MACHINE_KEYS, {
      required: final ? REQUIRED_MACHINE_KEYS : [],
    });
    if (!keys) return undefined;
    const table: Record<string, TomlValue> = {};
    const notes: PlacedNote[] = [];
    const at = (pair: YPair, key: string): Place =>
      placeOf(pair, [...place.path, key]);
    for (const key of MACHINE_KEYS) {
      const pair = keys.get(key);
      if (!pair) continue;
      switch (key) {
        case "base_image": {
          const text = this.optionalString(pair.value, at(pair, key));
          this.#set(table, key, text);
          if (text !== undefined) {
            relativeNote(text, pair, [key], notes, "host.base_dir");
          }
          break;
        }
        case "base_machine":
          this.#set(table, key, this.triplet(pair.value, at(pair, key)));
          break;
        case "use_base": {
          const policy = this.choice(pair.value, at(pair, key), [
            "if_newer",
            "always",
            "never",
          ]);
          this.#set(table, key, policy);
          if (policy === "never") {
            notes.push(
              note(
                pair,
                [key],
                'use_base = "never" means something else here: the original ' +
                  "started only from the machine's own image and waited until " +
                  "there was one; Forrest starts from the base until the " +
                  "machine's first persist, then only from its own image",
              ),
            );
          }
          break;
        }
        case "cpus":
          this.#set(table, key, this.uint(pair.value, at(pair, key), U32_MAX));
          break;
        case "ram":
          this.#set(table, key, this.size(pair.value, at(pair, key)));
          break;
        case "disk": {
          const size = this.size(pair.value, at(pair, key));
          if (size !== undefined && /^0[A-Z]$/.test(size)) {
            notes.push(
              note(
                pair,
                [],
                `disk "${size}" is left out: the original never shrank a ` +
                  "disk, so it meant the image's own size, which is Forrest's " +
                  "default (Forrest rejects a size of 0)",
              ),
            );
          } else this.#set(table, key, size);
          break;
        }
        case "setup_template":
          this.#set(
            table,
            key,
            this.template(pair, at(pair, key), notes, final),
          );
          break;
        case "shared":
          this.#set(table, key, this.shared(pair, at(pair, key), notes));
          break;
        case "artifacts":
          this.#set(table, key, this.artifacts(pair, at(pair, key), notes));
          break;
        case "network_interfaces": {
          const interfaces = this.networkInterfaces(
            pair,
            at(pair, key),
            notes,
          );
          if (interfaces !== undefined && interfaces.length > 0) {
            table[key] = interfaces;
          }
          break;
        }
      }
    }
    return { table, notes };
  }

  template(
    pair: YPair,
    place: Place,
    notes: PlacedNote[],
    final: boolean,
  ): TomlTable | undefined {
    // The original's SetupTemplate ignores keys it does not know.
    const keys = this.struct(pair.value, place, ["path", "parameters"], {
      required: final ? ["path"] : [],
      unknown: "ignore",
    });
    if (!keys) return undefined;
    const table: Record<string, TomlValue> = {};
    const path = keys.get("path");
    if (path) {
      const text = this.string(
        path.value,
        placeOf(path, [...place.path, "path"]),
      );
      if (text !== undefined) {
        table.path = text;
        relativeNote(
          text,
          path,
          ["setup_template", "path"],
          notes,
          "the TOML file's folder",
        );
      }
    }
    const parameters = keys.get("parameters");
    if (parameters) {
      const values: Record<string, TomlValue> = {};
      const parametersPath = [...place.path, "parameters"];
      for (
        const parameter of this.map(
          parameters.value,
          placeOf(parameters, parametersPath),
        )
      ) {
        const name = this.key(parameter, parametersPath);
        if (name === undefined) continue;
        const text = this.string(
          parameter.value,
          placeOf(parameter, [...parametersPath, name]),
        );
        if (text !== undefined) values[name] = text;
      }
      table.parameters = values;
    }
    for (const ignored of keys.ignored) {
      notes.push(
        note(
          ignored,
          ["setup_template"],
          `setup_template.${
            String(ignored.key)
          } is left out: the original ignored it`,
        ),
      );
    }
    return table;
  }

  shared(pair: YPair, place: Place, notes: PlacedNote[]): TomlValue[] {
    return this.list(pair.value, place).flatMap((item, index) => {
      const itemPlace = { path: [...place.path, index], line: item.line };
      const keys = this.struct(item, itemPlace, ["path", "tag", "writable"], {
        required: ["path", "tag"],
      });
      if (!keys) return [];
      const dir: Record<string, TomlValue> = {};
      const path = keys.get("path");
      if (path) {
        const text = this.string(
          path.value,
          placeOf(path, [...itemPlace.path, "path"]),
        );
        if (text !== undefined) {
          dir.path = text;
          relativeNote(text, path, ["shared"], notes, "the TOML file's folder");
        }
      }
      const tag = keys.get("tag");
      if (tag) {
        this.#set(
          dir,
          "tag",
          this.string(tag.value, placeOf(tag, [...itemPlace.path, "tag"])),
        );
      }
      const writable = keys.get("writable");
      if (writable) {
        this.#set(
          dir,
          "writable",
          this.bool(
            writable.value,
            placeOf(writable, [...itemPlace.path, "writable"]),
          ),
        );
      }
      return [dir];
    });
  }

  artifacts(pair: YPair, place: Place, notes: PlacedNote[]): TomlValue[] {
    return this.list(pair.value, place).flatMap((item, index) => {
      const itemPlace = { path: [...place.path, index], line: item.line };
      const keys = this.struct(item, itemPlace, [
        "name",
        "path",
        "url",
        "quota",
        "token",
      ], { required: ["path", "url", "quota"] });
      if (!keys) return [];
      const store: Record<string, TomlValue> = {};
      for (const key of ["name", "path", "url", "quota", "token"] as const) {
        const field = keys.get(key);
        if (!field) continue;
        const fieldPlace = placeOf(field, [...itemPlace.path, key]);
        const value = key === "quota"
          ? this.size(field.value, fieldPlace)
          : key === "token"
          ? this.optionalString(field.value, fieldPlace)
          : this.string(field.value, fieldPlace);
        this.#set(store, key, value);
        if (key === "path" && value !== undefined) {
          relativeNote(
            value,
            field,
            ["artifacts"],
            notes,
            "the TOML file's folder",
          );
        }
      }
      return [store];
    });
  }

  networkInterfaces(
    pair: YPair,
    place: Place,
    notes: PlacedNote[],
  ): TomlValue[] | undefined {
    const before = this.#problems.length;
    const interfaces = this.list(pair.value, place).flatMap((item, index) => {
      const itemPlace = { path: [...place.path, index], line: item.line };
      const keys = this.struct(item, itemPlace, ["type", "path"], {
        required: ["type", "path"],
      });
      const type = keys?.get("type");
      const path = keys?.get("path");
      if (!type || !path) return [];
      const kind = this.choice(
        type.value,
        placeOf(type, [...itemPlace.path, "type"]),
        ["vde"],
      );
      const text = this.string(
        path.value,
        placeOf(path, [...itemPlace.path, "path"]),
      );
      if (kind === undefined || text === undefined) return [];
      relativeNote(
        text,
        path,
        ["network_interfaces"],
        notes,
        "the TOML file's folder",
      );
      return [{ type: kind, path: text }];
    });
    return this.#problems.length > before ? undefined : interfaces;
  }

  // --- values, checked as serde read them from yaml_serde's Value ---

  /** A mapping's keys, each once; null reads as an empty mapping, as serde did. */
  struct(
    value: YValue,
    place: Place,
    known: readonly string[],
    options: { required: readonly string[]; unknown?: "error" | "ignore" },
  ): (Map<string, YPair> & { ignored: YPair[] }) | undefined {
    const pairs = this.map(value, place, "a mapping");
    if (
      value.kind !== "map" && !(value.kind === "scalar" && value.value === null)
    ) {
      return undefined;
    }
    const keys = Object.assign(new Map<string, YPair>(), {
      ignored: [] as YPair[],
    });
    for (const pair of pairs) {
      const key = this.key(pair, place.path);
      if (key === undefined) continue;
      if (known.includes(key)) keys.set(key, pair);
      else if (options.unknown === "ignore") keys.ignored.push(pair);
      else {
        const hint = didYouMean(key, known);
        this.#fail(
          placeOf(pair, [...place.path, key]),
          hint === ""
            ? `unknown key (forrest's YAML config has ${known.join(", ")} here)`
            : `unknown key${hint}`,
        );
      }
    }
    for (const key of options.required) {
      if (!keys.has(key)) {
        this.#fail(
          { path: [...place.path, key], line: place.line },
          "required key is missing",
        );
      }
    }
    return keys;
  }

  /** The pairs of a mapping; null reads as an empty one. */
  map(value: YValue, place: Place, what = "a mapping"): readonly YPair[] {
    if (value.kind === "map") return value.pairs;
    if (value.kind === "scalar" && value.value === null) return [];
    this.#fail(place, `expected ${what}, found ${describeYaml(value)}`);
    return [];
  }

  /** The items of a list; null reads as an empty one. */
  list(value: YValue, place: Place): readonly YValue[] {
    if (value.kind === "seq") return value.items;
    if (value.kind === "scalar" && value.value === null) return [];
    this.#fail(place, `expected a list, found ${describeYaml(value)}`);
    return [];
  }

  /** A mapping key, which serde wants as a string. */
  key(pair: YPair, path: KeyPath): string | undefined {
    if (typeof pair.key === "string") return pair.key;
    this.#fail(
      { path: [...path, String(pair.key)], line: pair.line },
      `expected a string as key, found ${String(pair.key)} (quote it: "${
        String(pair.key)
      }")`,
    );
    return undefined;
  }

  string(value: YValue, place: Place): string | undefined {
    if (value.kind === "scalar" && typeof value.value === "string") {
      return value.value;
    }
    return this.#fail(place, `expected a string, found ${describeYaml(value)}`);
  }

  optionalString(value: YValue, place: Place): string | undefined {
    if (value.kind === "scalar" && value.value === null) return undefined;
    return this.string(value, place);
  }

  bool(value: YValue, place: Place): boolean | undefined {
    if (value.kind === "scalar" && typeof value.value === "boolean") {
      return value.value;
    }
    return this.#fail(
      place,
      `expected true or false, found ${describeYaml(value)}`,
    );
  }

  uint(value: YValue, place: Place, max: number): number | undefined {
    if (
      value.kind === "scalar" && typeof value.value === "number" &&
      Number.isInteger(value.value) && value.value >= 0 && value.value <= max
    ) {
      return value.value;
    }
    return this.#fail(
      place,
      `expected a whole number from 0 to ${max}, found ${describeYaml(value)}`,
    );
  }

  choice<T extends string>(
    value: YValue,
    place: Place,
    choices: readonly T[],
  ): T | undefined {
    if (value.kind === "scalar" && typeof value.value === "string") {
      const text = value.value;
      const found = choices.find((choice) => choice === text);
      if (found !== undefined) return found;
    }
    const hint = value.kind === "scalar" && typeof value.value === "string"
      ? didYouMean(value.value, choices)
      : "";
    return this.#fail(
      place,
      `expected one of ${choices.map((c) => `"${c}"`).join(", ")}, found ${
        describeYaml(value)
      }${hint}`,
    );
  }

  /** The original split on "/" and wanted exactly three parts. */
  triplet(value: YValue, place: Place): string | undefined {
    if (value.kind === "scalar" && value.value === null) return undefined;
    const text = this.string(value, place);
    if (text === undefined) return undefined;
    if (text.split("/").length === 3) return text;
    return this.#fail(
      place,
      `expected "owner/repo/machine", found ${JSON.stringify(text)}`,
    );
  }

  /** `<whole number><B|K|M|G|T>`, as the original parsed it, written plainly. */
  size(value: YValue, place: Place): string | undefined {
    return this.#quantity(
      value,
      place,
      "BKMGT",
      'a size such as "4G" (a whole number and B, K, M, G or T)',
    );
  }

  /** `<whole number><s|m|h|d>`. */
  duration(value: YValue, place: Place): string | undefined {
    return this.#quantity(
      value,
      place,
      "smhd",
      'a duration such as "15m" (a whole number and s, m, h or d)',
    );
  }

  #quantity(
    value: YValue,
    place: Place,
    units: string,
    what: string,
  ): string | undefined {
    if (value.kind === "scalar" && typeof value.value === "string") {
      // Rust's u64 parser, which the original used, takes an optional "+".
      const match = /^\+?(\d+)(.)$/s.exec(value.value);
      if (match && units.includes(match[2]!)) {
        return `${BigInt(match[1]!)}${match[2]}`;
      }
    }
    return this.#fail(place, `expected ${what}, found ${describeYaml(value)}`);
  }

  #set(
    table: Record<string, TomlValue>,
    key: string,
    value: TomlValue | undefined,
  ): void {
    if (value !== undefined) table[key] = value;
  }

  #fail(place: Place, message: string): undefined {
    this.#problems.push({ line: place.line, path: place.path, message });
    return undefined;
  }
}

function placeOf(pair: YPair, path: KeyPath): Place {
  return { path, line: pair.line };
}

function note(pair: YPair, at: KeyPath, message: string): PlacedNote {
  return { level: "note", line: pair.line, path: pair.path, at, message };
}

function relativeNote(
  text: string,
  pair: YPair,
  at: KeyPath,
  notes: PlacedNote[],
  againstForrest: string,
): void {
  if (text.startsWith("/")) return;
  notes.push(
    note(
      pair,
      at,
      `${JSON.stringify(text)} is a relative path: the original read it from ` +
        `its working directory, Forrest reads it from ${againstForrest}`,
    ),
  );
}
