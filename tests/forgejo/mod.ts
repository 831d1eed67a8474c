/** The Forgejo test double and what tests need around it. */

export type { AuthKind } from "./auth.ts";
export {
  type Fault,
  type FaultMatch,
  ForgejoDouble,
  type ForgejoDoubleOptions,
  type JobView,
  type QueuedJob,
  type QueueJobOptions,
  type RecordedRequest,
  type RunnerView,
  type TokenView,
  type UserView,
} from "./double.ts";
export type { PackageUpload } from "./packages.ts";
export type { JobStatus } from "./state.ts";
export {
  STANDIN_RUNNER_PATH,
  STANDIN_RUNNER_VERSION,
  standinRunnerSha256,
} from "./standin.ts";
export { loadSwagger, type MatchedOperation, type Swagger } from "./swagger.ts";
