/** The GitHub test double and what tests need around it. */

export {
  type Fault,
  GitHubDouble,
  type GitHubDoubleOptions,
  type QueueJobOptions,
  type RecordedRequest,
  type RequestCost,
} from "./double.ts";
export { generateAppKey, signAppJwt } from "./jwt.ts";
export type { ApiDescription } from "./openapi.ts";
export { pingPayload, workflowJobPayload } from "./payloads.ts";
export type {
  RunnerSetting,
  ScaleSetLabel,
  ScaleSetMode,
  ScaleSetStatistics,
  ScaleSetView,
} from "./scale_set_model.ts";
export type {
  ScaleSetAuth,
  ScaleSetOptions,
  ScaleSetRequest,
  ScaleSetRequestFilter,
} from "./scale_sets.ts";
export type { Job, JobStatus, Runner, RunnerScope } from "./state.ts";
export { STANDIN_TEMPLATE_DIR } from "./standin.ts";
export {
  type Delivery,
  type SendOptions,
  type Signature,
  signBody,
  type WebhookTarget,
} from "./webhooks.ts";
