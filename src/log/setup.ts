/** Configures where log records go and how they look. */

import {
  configure,
  getAnsiColorFormatter,
  getJsonLinesFormatter,
  getTextFormatter,
  isLogLevel,
  type LogLevel,
  type LogRecord,
  reset,
  type Sink,
  type TextFormatter,
} from "@logtape/logtape";
import { redactByField, redactByPattern } from "@logtape/redaction";
import { REDACTED, SECRET_FIELDS, SECRET_PATTERNS } from "./redact.ts";
import { Secret } from "./secret.ts";

export type LogFormat = "text" | "json";
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];
export const LOG_LEVELS: readonly LogLevel[] = [
  "trace",
  "debug",
  "info",
  "warning",
  "error",
  "fatal",
];

export interface SetupLoggingOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
  /** Colours in text lines; default: when stderr is a terminal and NO_COLOR is unset. */
  readonly color?: boolean;
  /** Where formatted lines go; default: standard error. */
  readonly write?: (line: string) => void;
}

/**
 * Parses a level name as users type it (`warn` for `warning`).
 *
 * @throws {RangeError} naming the valid levels
 */
export function parseLogLevel(text: string): LogLevel {
  const name = text.toLowerCase() === "warn" ? "warning" : text.toLowerCase();
  if (isLogLevel(name)) return name;
  throw new RangeError(
    `Unknown log level "${text}" (use ${LOG_LEVELS.join(", ")})`,
  );
}

/** Sends Forrest's records at `level` and above to stderr, redacted. */
export async function setupLogging(
  options: SetupLoggingOptions,
): Promise<void> {
  await configure({
    reset: true,
    sinks: { main: createSink(options) },
    loggers: [
      { category: ["forrest"], lowestLevel: options.level, sinks: ["main"] },
      // logtape's own notices only when something is wrong with logging.
      {
        category: ["logtape", "meta"],
        lowestLevel: "warning",
        sinks: ["main"],
      },
    ],
  });
}

/** Undoes setupLogging(), for tests. */
export async function resetLogging(): Promise<void> {
  await reset();
}

/** The redacting sink; exported so tests can check what reaches the output. */
export function createSink(options: SetupLoggingOptions): Sink {
  const write = options.write ?? writeStderr;
  const format = redactByPattern(formatterFor(options), SECRET_PATTERNS);
  const sink: Sink = (record: LogRecord) => write(format(record));
  const redacted = redactByField(sink, {
    fieldPatterns: SECRET_FIELDS,
    action: () => REDACTED,
  });
  return (record) => redacted(withoutSecrets(record));
}

/**
 * Replaces Secret values by the marker before the field redactor copies the
 * record: its copy keeps only own properties, and a Secret has none, so it
 * would print as `{}`.
 */
function withoutSecrets(record: LogRecord): LogRecord {
  const swap = (value: unknown) => value instanceof Secret ? REDACTED : value;
  return {
    ...record,
    message: record.message.map(swap),
    properties: Object.fromEntries(
      Object.entries(record.properties).map(([k, v]) => [k, swap(v)]),
    ),
  };
}

function formatterFor(options: SetupLoggingOptions): TextFormatter {
  if (options.format === "json") return getJsonLinesFormatter();
  const color = options.color ??
    (Deno.stderr.isTerminal() && !Deno.env.get("NO_COLOR"));
  const common = {
    timestamp: "date-time-timezone",
    category: ".",
  } as const;
  return color ? getAnsiColorFormatter(common) : getTextFormatter(common);
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line));
}
