/**
 * The config file: forrest.toml parsed, validated and resolved into a frozen
 * Config, with every problem reported at once as `FILE:LINE: key: message`.
 */

export * from "./types.ts";
export {
  loadConfig,
  type LoadedConfig,
  parseConfig,
  type ParseConfigOptions,
  readConfig,
  readFailure,
} from "./load.ts";
export { ConfigError, type ConfigProblem, formatProblem } from "./problem.ts";
export { formatKeyPath, type KeyPath } from "./key_path.ts";
export { formatSize, parseSize } from "./size.ts";
export { formatDuration, parseDuration } from "./duration.ts";
export { formatListen } from "./listen.ts";
export {
  checkMachineName,
  checkOwnerName,
  checkRepoName,
  checkTripletNames,
  ciUserName,
} from "./names.ts";
export {
  ConfigReloader,
  type ConfigReloaderOptions,
  type ReloadOutcome,
} from "./reload.ts";
export {
  readSecretFile,
  readWebhookSecret,
  WebhookSecretError,
} from "./webhook_secret.ts";
