/** Ephemeral VMs: one command in one throw-away VM (`forrest exec`). */
export {
  type EphemeralOptions,
  type EphemeralOutcome,
  type EphemeralResult,
  runEphemeral,
} from "./ephemeral.ts";
export { execJobScript, shellQuote } from "./job_script.ts";
export { followFile } from "./follow.ts";
