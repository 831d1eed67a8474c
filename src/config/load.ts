/** Reading forrest.toml: syntax, then shape, then meaning, all problems at once. */

import { dirname, resolve } from "node:path";
import { parse, TomlError } from "smol-toml";
import { locateKeys } from "./key_lines.ts";
import { ConfigError, type ConfigProblem } from "./problem.ts";
import { resolveConfig } from "./resolve.ts";
import type { Config } from "./types.ts";

export interface ParseConfigOptions {
  /**
   * The file name to show in problems, as the user wrote it; relative paths
   * in the config resolve against its folder.
   */
  readonly file: string;
  /** Folder a relative `file` is taken from; the working directory if unset. */
  readonly cwd?: string;
}

/**
 * Parses and validates config text.
 *
 * @throws {ConfigError} listing every problem, each with its line
 */
export function parseConfig(
  source: string,
  options: ParseConfigOptions,
): Config {
  const absolute = resolve(options.cwd ?? Deno.cwd(), options.file);
  let doc: Record<string, unknown>;
  try {
    doc = parse(source) as Record<string, unknown>;
  } catch (error) {
    if (!(error instanceof TomlError)) throw error;
    throw new ConfigError(options.file, [syntaxProblem(error)]);
  }
  const { config, problems } = resolveConfig(doc, {
    configDir: dirname(absolute),
    file: absolute,
  });
  if (config && problems.length === 0) return config;
  const lines = locateKeys(source);
  const located = problems.map((problem): ConfigProblem => ({
    ...problem,
    line: lines.lineOf(problem.path),
  }));
  throw new ConfigError(options.file, sortUnique(located));
}

/**
 * Reads and validates a config file.
 *
 * @throws {ConfigError} when the file cannot be read or is not valid
 */
export async function loadConfig(
  file: string,
  options: { cwd?: string } = {},
): Promise<Config> {
  return (await readConfig(file, options)).config;
}

/** A config and the text it was read from. */
export interface LoadedConfig {
  readonly config: Config;
  readonly text: string;
}

/**
 * Like loadConfig(), keeping the text too, so that a reload can tell a real
 * change from a touched file.
 *
 * @throws {ConfigError} when the file cannot be read or is not valid
 */
export async function readConfig(
  file: string,
  options: { cwd?: string } = {},
): Promise<LoadedConfig> {
  const cwd = options.cwd ?? Deno.cwd();
  let text: string;
  try {
    text = await Deno.readTextFile(resolve(cwd, file));
  } catch (error) {
    throw new ConfigError(file, [{ path: [], message: readFailure(error) }]);
  }
  return { config: parseConfig(text, { file, cwd }), text };
}

/** Why a config file could not be read, for a problem line. */
export function readFailure(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "cannot read: no such file";
  if (error instanceof Deno.errors.PermissionDenied) {
    return "cannot read: permission denied";
  }
  if (error instanceof Deno.errors.IsADirectory) {
    return "cannot read: it is a directory";
  }
  if (error instanceof TypeError) return "cannot read: not valid UTF-8 text";
  return `cannot read: ${
    error instanceof Error ? error.message : String(error)
  }`;
}

function syntaxProblem(error: TomlError): ConfigProblem {
  // smol-toml's message is "Invalid TOML document: <what>" and a code frame;
  // the file:line:column prefix already points at the spot.
  const what = error.message.split("\n")[0]!.replace(
    /^Invalid TOML document: /,
    "",
  );
  return {
    line: error.line,
    column: error.column,
    path: [],
    message: `TOML syntax error: ${what}`,
  };
}

/** In file order; the same problem reached twice (through a snippet) once. */
function sortUnique(problems: ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems
    .map((problem, index) => ({ problem, index }))
    .sort((a, b) =>
      (a.problem.line ?? 0) - (b.problem.line ?? 0) || a.index - b.index
    )
    .map(({ problem }) => problem)
    .filter((problem) => {
      const key = JSON.stringify([problem.line, problem.path, problem.message]);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
}
