/**
 * The command tree. Commands are registered here only once they work;
 * each action returns its exit code through `setExit`.
 */

import { Command, Option } from "commander";
import {
  LOG_FORMATS,
  type LogFormat,
  parseLogLevel,
  setupLogging,
} from "../log/mod.ts";
import { versionLine } from "../version.ts";
import { configCheck } from "./config_check.ts";
import { UsageError } from "./exit.ts";
import type { Output } from "./output.ts";

export interface ProgramContext {
  readonly output: Output;
  /** Environment lookup, so tests and the launcher see the same rules. */
  readonly env: (name: string) => string | undefined;
  /** Records the exit code of the command that ran. */
  readonly setExit: (code: number) => void;
}

interface GlobalOptions {
  config?: string;
  logLevel?: string;
  logFormat: LogFormat;
}

export const DEFAULT_CONFIG = "forrest.toml";

export function createProgram(context: ProgramContext): Command {
  const { output, env, setExit } = context;
  const program = new Command("forrest")
    .description(
      "Run GitHub Actions jobs in ephemeral qemu VMs, one VM per job, on one host.",
    )
    .option(
      "-c, --config <file>",
      `config file (default: $FORREST_CONFIG, else ./${DEFAULT_CONFIG})`,
    )
    .option(
      "--log-level <level>",
      "trace, debug, info, warning or error (default: $FORREST_LOG, else info)",
    )
    .addOption(
      new Option("--log-format <format>", "log lines as text or JSON")
        .choices(LOG_FORMATS)
        .default("text"),
    )
    .version(versionLine(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .helpCommand(false)
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out(text.trimEnd()),
      writeErr: (text) => output.err(text.trimEnd()),
      outputError: (text, write) =>
        write(text.replace(/^error: /, "forrest: ")),
    })
    .hook("preAction", async (_command, action) => {
      const options = action.optsWithGlobals<GlobalOptions>();
      const levelText = options.logLevel ?? env("FORREST_LOG") ?? "info";
      let level;
      try {
        level = parseLogLevel(levelText);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      await setupLogging({ level, format: options.logFormat });
    });

  program.command("version")
    .description("print the version")
    .action(() => {
      output.out(versionLine());
      setExit(0);
    });

  const config = program.command("config")
    .description("work with the config file")
    .helpCommand(false);
  config.command("check")
    .description(
      "validate the config and print the machines it defines; exit 2 listing every problem",
    )
    .argument("[file]", "config file (same as --config)")
    .addHelpText(
      "after",
      "\nProblems are printed as FILE:LINE: key.path: message, all at once.",
    )
    .action(async (file: string | undefined, _options, command: Command) => {
      const { config: flag } = command.optsWithGlobals<GlobalOptions>();
      if (file !== undefined && flag !== undefined && file !== flag) {
        throw new UsageError(
          `Two config files given ("${file}" and --config "${flag}"): name one`,
        );
      }
      const chosen = file ?? flag ?? env("FORREST_CONFIG");
      setExit(
        await configCheck(chosen ?? DEFAULT_CONFIG, output, {
          isDefault: chosen === undefined,
        }),
      );
    });

  return program;
}
