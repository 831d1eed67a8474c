/** Config problems: what is wrong, and where, for people and editors. */

import { formatKeyPath, type KeyPath } from "./key_path.ts";

/** One thing wrong with a config file. */
export interface ConfigProblem {
  /** 1-based; unset for problems with the whole file (it cannot be read). */
  readonly line?: number;
  /** Set only for TOML syntax errors, which have no key path. */
  readonly column?: number;
  readonly path: KeyPath;
  readonly message: string;
}

/**
 * Formats a problem as `FILE:LINE: key.path: message`, or
 * `FILE:LINE:COLUMN: message` for syntax errors: the shape compilers use, so
 * that editors and terminals can jump to the spot.
 */
export function formatProblem(file: string, problem: ConfigProblem): string {
  const at = problem.line === undefined
    ? file
    : problem.column === undefined
    ? `${file}:${problem.line}`
    : `${file}:${problem.line}:${problem.column}`;
  const key = problem.path.length > 0 ? ` ${formatKeyPath(problem.path)}:` : "";
  return `${at}:${key} ${problem.message}`;
}

/** A config file that cannot be used, with every problem found in it. */
export class ConfigError extends Error {
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[]) {
    super(problems.map((problem) => formatProblem(file, problem)).join("\n"));
    this.name = "ConfigError";
    this.file = file;
    this.problems = problems;
  }

  /** The problems, one formatted line each. */
  get lines(): string[] {
    return this.problems.map((problem) => formatProblem(this.file, problem));
  }
}
