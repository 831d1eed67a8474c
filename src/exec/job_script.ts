/** The job.sh that `forrest exec` puts on JOBDATA to run one command. */

import { GUEST_API_URL } from "../launch/guest_network.ts";

/** Quotes `arg` for a POSIX shell: single quotes, with ' written as '\''. */
export function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * A script that runs `command` in the runner's home, so that the command's
 * exit code becomes the job's (written to config/exit-code by the guest).
 */
export function execJobScript(command: readonly string[]): string {
  if (command.length === 0) throw new RangeError("Cannot run an empty command");
  return [
    "#!/bin/sh",
    "# Written by forrest exec: runs the command it was given, as given.",
    `export FORREST_API_URL=${GUEST_API_URL}`,
    "export FORREST_RUN_TOKEN_FILE=/home/runner/config/run-token",
    'cd "$HOME" 2>/dev/null || cd /',
    `exec ${command.map(shellQuote).join(" ")}`,
    "",
  ].join("\n");
}
