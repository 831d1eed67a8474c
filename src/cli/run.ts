/** Runs the CLI and turns every outcome into an exit code. */

import { CommanderError } from "commander";
import { getLogger } from "@logtape/logtape";
import { errorText } from "../log/mod.ts";
import { ConfigError } from "../config/mod.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from "./exit.ts";
import { type Output, stdio } from "./output.ts";
import { createProgram } from "./program.ts";

export interface RunCliOptions {
  readonly output?: Output;
  readonly env?: (name: string) => string | undefined;
  readonly writeStdout?: (chunk: Uint8Array) => Promise<void>;
  readonly writeStderr?: (chunk: Uint8Array) => Promise<void>;
}

async function writeAll(
  stream: { write(p: Uint8Array): Promise<number> },
  chunk: Uint8Array,
) {
  let rest = chunk;
  while (rest.length > 0) rest = rest.subarray(await stream.write(rest));
}

/**
 * Parses `args` (without the program name), runs the command, and returns
 * its exit code. Bad usage gives 2 with a one-line message; an unexpected
 * error gives 1 with its message (and its stack only at debug level).
 */
export async function runCli(
  args: readonly string[],
  options: RunCliOptions = {},
): Promise<number> {
  const output = options.output ?? stdio;
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  let code = EXIT_OK;
  const program = createProgram({
    output,
    env,
    setExit: (c) => code = c,
    writeStdout: options.writeStdout ??
      ((chunk) => writeAll(Deno.stdout, chunk)),
    writeStderr: options.writeStderr ??
      ((chunk) => writeAll(Deno.stderr, chunk)),
  });
  if (args.length === 0) {
    program.outputHelp({ error: true });
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync([...args], { from: "user" });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version end through here too, successfully.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    if (error instanceof UsageError) {
      output.err(`forrest: ${error.message}`);
      return EXIT_USAGE;
    }
    if (error instanceof ConfigError) {
      for (const line of error.lines) output.err(line);
      return EXIT_USAGE;
    }
    output.err(`forrest: ${errorText(error)}`);
    getLogger(["forrest", "cli"]).debug("{stack}", {
      stack: error instanceof Error ? error.stack : undefined,
    });
    return EXIT_FAILURE;
  }
}
