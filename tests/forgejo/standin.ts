/**
 * The shell stand-in for `forgejo-runner` (standin/forgejo-runner), which
 * test VMs download from the double as they would the real binary from
 * code.forgejo.org: its path, version and checksum.
 */

import { fileURLToPath } from "node:url";

/** The version it claims: the runner release the research note is about. */
export const STANDIN_RUNNER_VERSION = "12.8.2";

export const STANDIN_RUNNER_PATH = fileURLToPath(
  new URL("./standin/forgejo-runner", import.meta.url),
);

/** Its bytes, as the double serves them. */
export function standinRunnerBytes(): Promise<Uint8Array<ArrayBuffer>> {
  return Deno.readFile(STANDIN_RUNNER_PATH);
}

/** Its sha256 in hex, for `FORGEJO_RUNNER_SHA256`. */
export async function standinRunnerSha256(): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    await standinRunnerBytes(),
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}
