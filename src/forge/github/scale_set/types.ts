/**
 * The wire shapes of GitHub's runner scale set protocol (the Actions
 * service), as actions/scaleset reads and writes them
 * (../shared/research/scale-sets-and-peers.md C.6), and the checks that
 * turn an answer into them. Answers come from a service without a public
 * description: each is checked for what Forrest uses, and one that lacks
 * it is an error that says what was missing, never a crash later.
 */

export interface ScaleSetLabel {
  readonly name: string;
  readonly type: string;
}

/** A runner scale set as the service has it (the fields Forrest uses). */
export interface RunnerScaleSet {
  readonly id: number;
  readonly name: string;
  readonly runnerGroupId: number;
  readonly labels: readonly ScaleSetLabel[];
}

/** What the service counts for a scale set; "always current". */
export interface ScaleSetStatistics {
  readonly totalAvailableJobs: number;
  readonly totalAcquiredJobs: number;
  /** Jobs assigned to the scale set: waiting for a runner, or running. */
  readonly totalAssignedJobs: number;
  readonly totalRunningJobs: number;
  readonly totalRegisteredRunners: number;
  readonly totalBusyRunners: number;
  readonly totalIdleRunners: number;
}

export interface ScaleSetSession {
  readonly sessionId: string;
  readonly ownerName: string;
  readonly messageQueueUrl: string;
  readonly messageQueueAccessToken: string;
  readonly statistics: ScaleSetStatistics;
}

export type JobMessageType =
  | "JobAvailable"
  | "JobAssigned"
  | "JobStarted"
  | "JobCompleted";

/** One job event inside a message's body. */
export interface JobMessage {
  readonly messageType: JobMessageType;
  /** Zero on github.com since 2025; what `acquirejobs` takes (GHES). */
  readonly runnerRequestId: number;
  /** The job's key: present in every message GitHub sends now. */
  readonly jobId: string;
  readonly ownerName: string;
  readonly repositoryName: string;
  readonly jobDisplayName: string;
  readonly requestLabels: readonly string[];
  /** Epoch ms, undefined while not set ("0001-01-01T00:00:00Z"). */
  readonly queueTime: number | undefined;
  readonly runnerAssignTime: number | undefined;
  /** JobStarted and JobCompleted. */
  readonly runnerId: number | undefined;
  readonly runnerName: string | undefined;
  /** JobCompleted: "succeeded", "failed", "canceled", … */
  readonly result: string | undefined;
}

/** One answer of the long poll. */
export interface ScaleSetMessage {
  readonly messageId: number;
  readonly statistics: ScaleSetStatistics;
  /** Job events of known types; unknown ones are skipped. */
  readonly jobs: readonly JobMessage[];
}

/** An answer that is not what the protocol says it is. */
export class ScaleSetProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ScaleSetProtocolError";
  }
}

type Json = Record<string, unknown>;

function record(value: unknown, what: string): Json {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ScaleSetProtocolError(`${what} is not a JSON object`);
  }
  return value as Json;
}

function int(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) {
    throw new ScaleSetProtocolError(`${what} is not an integer`);
  }
  return value;
}

function text(value: unknown, what: string): string {
  if (typeof value !== "string" || value === "") {
    throw new ScaleSetProtocolError(`${what} is missing`);
  }
  return value;
}

/** Counts missing from an answer are read as 0, as Go's decoder does. */
function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0
    ? Math.floor(value)
    : 0;
}

export function parseStatistics(value: unknown): ScaleSetStatistics {
  const s = typeof value === "object" && value !== null ? value as Json : {};
  return {
    totalAvailableJobs: count(s.totalAvailableJobs),
    totalAcquiredJobs: count(s.totalAcquiredJobs),
    totalAssignedJobs: count(s.totalAssignedJobs),
    totalRunningJobs: count(s.totalRunningJobs),
    totalRegisteredRunners: count(s.totalRegisteredRunners),
    totalBusyRunners: count(s.totalBusyRunners),
    totalIdleRunners: count(s.totalIdleRunners),
  };
}

export function parseScaleSet(value: unknown): RunnerScaleSet {
  const s = record(value, "the runner scale set");
  const labels = Array.isArray(s.labels) ? s.labels : [];
  return {
    id: int(s.id, "the scale set's id"),
    name: text(s.name, "the scale set's name"),
    runnerGroupId: int(s.runnerGroupId, "the scale set's runnerGroupId"),
    labels: labels.flatMap((label) => {
      const l = typeof label === "object" && label !== null
        ? label as Json
        : {};
      return typeof l.name === "string"
        ? [{ name: l.name, type: typeof l.type === "string" ? l.type : "" }]
        : [];
    }),
  };
}

export function parseSession(value: unknown): ScaleSetSession {
  const s = record(value, "the message session");
  return {
    sessionId: text(s.sessionId, "the session's sessionId"),
    ownerName: typeof s.ownerName === "string" ? s.ownerName : "",
    messageQueueUrl: text(s.messageQueueUrl, "the session's messageQueueUrl"),
    messageQueueAccessToken: text(
      s.messageQueueAccessToken,
      "the session's messageQueueAccessToken",
    ),
    statistics: parseStatistics(s.statistics),
  };
}

const JOB_MESSAGE_TYPES: readonly string[] = [
  "JobAvailable",
  "JobAssigned",
  "JobStarted",
  "JobCompleted",
];

/** Go's zero time, which the service writes for times not yet set. */
function time(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/**
 * A long poll's message: `body` is JSON text of job events, decoded a
 * second time. Only `RunnerScaleSetJobMessages` is known; another type is
 * an error (actions/scaleset fails on it too).
 */
export function parseMessage(value: unknown): ScaleSetMessage {
  const m = record(value, "the message");
  const messageId = int(m.messageId, "the message's messageId");
  if (m.messageType !== "RunnerScaleSetJobMessages") {
    throw new ScaleSetProtocolError(
      `message ${messageId} is of unknown type ${
        JSON.stringify(m.messageType)
      }`,
    );
  }
  let body: unknown = [];
  if (typeof m.body === "string" && m.body !== "") {
    try {
      body = JSON.parse(m.body);
    } catch {
      throw new ScaleSetProtocolError(
        `message ${messageId}'s body is not JSON`,
      );
    }
  }
  if (!Array.isArray(body)) {
    throw new ScaleSetProtocolError(
      `message ${messageId}'s body is not a list`,
    );
  }
  const jobs: JobMessage[] = [];
  for (const item of body) {
    if (typeof item !== "object" || item === null) continue;
    const j = item as Json;
    if (!JOB_MESSAGE_TYPES.includes(String(j.messageType))) continue;
    jobs.push({
      messageType: j.messageType as JobMessageType,
      runnerRequestId: count(j.runnerRequestId),
      jobId: typeof j.jobId === "string" ? j.jobId : "",
      ownerName: typeof j.ownerName === "string" ? j.ownerName : "",
      repositoryName: typeof j.repositoryName === "string"
        ? j.repositoryName
        : "",
      jobDisplayName: typeof j.jobDisplayName === "string"
        ? j.jobDisplayName
        : "",
      requestLabels: Array.isArray(j.requestLabels)
        ? j.requestLabels.filter((l): l is string => typeof l === "string")
        : [],
      queueTime: time(j.queueTime),
      runnerAssignTime: time(j.runnerAssignTime),
      runnerId: typeof j.runnerId === "number" ? j.runnerId : undefined,
      runnerName: typeof j.runnerName === "string" && j.runnerName !== ""
        ? j.runnerName
        : undefined,
      result: typeof j.result === "string" ? j.result : undefined,
    });
  }
  return { messageId, statistics: parseStatistics(m.statistics), jobs };
}

/**
 * When a JWT expires (its `exp`, in ms), read without verifying it, as
 * actions/scaleset does: only the service checks its tokens.
 */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (payload === undefined) return undefined;
  try {
    const json = JSON.parse(
      atob(payload.replace(/-/g, "+").replace(/_/g, "/")),
    );
    return typeof json.exp === "number" ? json.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
