/** `forrest serve`: the daemon, its executor, its API and its metrics. */
export { apiApp, WEBHOOK_LIMIT } from "./api.ts";
export { Daemon, type DaemonOptions, type WebhookAnswer } from "./daemon.ts";
export { Executor } from "./executor.ts";
export { listenAll, ListenError, type Listening } from "./listen.ts";
export { Metrics, type WebhookOutcome } from "./metrics.ts";
export { type RecoveredRun, recoverRuns } from "./recovery.ts";
export { type NotifyState, notifySystemd } from "./notify.ts";
