/**
 * Forrest's entry point: it only hands the arguments to the CLI, which wires
 * the components each command needs, and exits with the code it returns.
 */

import { runCli } from "./src/cli/mod.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
