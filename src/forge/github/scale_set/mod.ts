/** GitHub's runner scale set protocol (product.md §16). */

export {
  ActionsService,
  type ActionsServiceOptions,
  ScaleSetError,
  sleep,
} from "./actions_service.ts";
export { configUrlOf, webUrlOf } from "./config_url.ts";
export { MessageSession } from "./session.ts";
export {
  type JobMessage,
  type RunnerScaleSet,
  type ScaleSetMessage,
  ScaleSetProtocolError,
  type ScaleSetStatistics,
} from "./types.ts";
