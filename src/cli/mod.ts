/** The command line: `forrest <command> [options]`. */

export { runCli, type RunCliOptions } from "./run.ts";
export { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from "./exit.ts";
export type { Output } from "./output.ts";
