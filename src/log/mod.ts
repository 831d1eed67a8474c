/**
 * Logging: logtape records from `getLogger(["forrest", …])`, written to
 * stderr as text or JSON lines, with secrets redacted on the way out.
 */

export { getLogger, type Logger, type LogLevel } from "@logtape/logtape";
export { errorText } from "./error_text.ts";
export { Secret } from "./secret.ts";
export { REDACTED, SECRET_FIELDS, SECRET_PATTERNS } from "./redact.ts";
export {
  createSink,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  parseLogLevel,
  resetLogging,
  setupLogging,
  type SetupLoggingOptions,
} from "./setup.ts";
