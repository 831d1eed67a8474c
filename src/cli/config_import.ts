/**
 * `forrest config import FILE.yaml [-o FILE.toml]`: the original's config as
 * Forrest's, with notes on stderr wherever the meaning differs. The result
 * is then checked as `config check` would, so that what still needs a hand
 * is said at once.
 */

import { basename, dirname, join } from "node:path";
import {
  allMachines,
  type Config,
  ConfigError,
  parseConfig,
  readFailure,
} from "../config/mod.ts";
import { formatImportNote, importConfig } from "../config/import/mod.ts";
import { pathExists } from "../host/mod.ts";
import { describeScopes } from "./config_check.ts";
import { EXIT_OK, EXIT_USAGE, UsageError } from "./exit.ts";
import type { Output } from "./output.ts";

export interface ConfigImportFlags {
  /** Where to write the TOML; stdout when unset. */
  readonly output?: string;
  /** Replace `output` if it exists. */
  readonly force?: boolean;
}

/** Name of the TOML in messages when it goes to stdout. */
const STDOUT_NAME = "<stdout>";

export async function configImport(
  file: string,
  flags: ConfigImportFlags,
  output: Output,
): Promise<number> {
  if (
    flags.output !== undefined && !flags.force &&
    await pathExists(flags.output)
  ) {
    throw exists(flags.output);
  }
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (error) {
    output.err(`${file}: ${readFailure(error)}`);
    return EXIT_USAGE;
  }
  let result;
  try {
    result = importConfig(text, { file });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.lines) output.err(line);
    const count = error.problems.length;
    output.err(`${file}: ${count} problem${count === 1 ? "" : "s"}`);
    return EXIT_USAGE;
  }
  for (const note of result.notes) output.err(formatImportNote(file, note));
  if (flags.output === undefined) output.out(result.toml.trimEnd());
  else await writeNew(flags.output, result.toml, flags.force ?? false);

  const target = flags.output ?? STDOUT_NAME;
  let config: Config;
  try {
    config = parseConfig(result.toml, { file: target });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.lines) output.err(line);
    const count = error.problems.length;
    output.err(
      `${target}: ${count} problem${count === 1 ? "" : "s"} that ` +
        "forrest config check reports too: Forrest's rules are stricter here",
    );
    return EXIT_USAGE;
  }
  if (flags.output !== undefined) {
    const machines = allMachines(config).length;
    output.err(
      `Wrote ${flags.output}: ${machines} machine${
        machines === 1 ? "" : "s"
      } in ${describeScopes(config)}; forrest config check accepts it`,
    );
  }
  return EXIT_OK;
}

/**
 * Writes `text` to `path` atomically: a temp file beside it, then a hard
 * link (which fails when `path` exists) or, with `force`, a rename. The file
 * is private (0600): it may hold the webhook secret and tokens.
 *
 * @throws {UsageError} when `path` exists and `force` is not set
 */
async function writeNew(
  path: string,
  text: string,
  force: boolean,
): Promise<void> {
  const temp = join(
    dirname(path),
    `.${basename(path)}.tmp-${crypto.randomUUID().slice(0, 8)}`,
  );
  await Deno.writeTextFile(temp, text, { mode: 0o600, createNew: true });
  try {
    if (force) {
      await Deno.rename(temp, path);
      return;
    }
    try {
      await Deno.link(temp, path);
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) throw exists(path);
      // No hard links on this file system: check, then rename.
      if (await pathExists(path)) throw exists(path);
      await Deno.rename(temp, path);
    }
  } finally {
    await Deno.remove(temp).catch(() => {});
  }
}

function exists(path: string): UsageError {
  return new UsageError(
    `${path} exists: pass --force to replace it, or name another file`,
  );
}
