/**
 * The listener of one machine type's runner scale set (product.md §16):
 * finds or makes the scale set, opens a message session, long-polls its
 * queue and hands what comes to the daemon: statistics (the type's
 * demand), runners that took a job. No inbound connection is needed.
 *
 * Faults it lives through (../shared/research/scale-sets-and-peers.md
 * C.7–C.12):
 * - A session of an earlier Forrest that crashed: its id is kept on disk
 *   and the session deleted before a new one is made. Another listener's
 *   session (409): tried again, 5 s growing by half up to a minute.
 * - An expired queue token: refreshed once per call (session.ts). An
 *   expired admin token: renewed a minute before (actions_service.ts).
 * - 5xx, 429 and timeouts of the queue: the poll is tried again after a
 *   growing delay, on the same session.
 * - The same message again (its acknowledgement failed): handling is
 *   idempotent (statistics replace; a runner that took a job is busy).
 * - The scale set deleted on GitHub (inactive for 7 days) or the session
 *   gone: the scale set is found or made again, with a new session, and
 *   message ids start from 0 again.
 * On stop the session is deleted, so that another host or a restart can
 * open one at once.
 */

import { getLogger } from "@logtape/logtape";
import { dirname, join } from "node:path";
import type { MachineConfig } from "../config/mod.ts";
import { scopeSegments, tripletName } from "../config/mod.ts";
import { runnerLabels } from "../core/mod.ts";
import { errorText } from "../log/mod.ts";
import type {
  GitHubForge,
  ScaleSetSpec,
} from "../forge/github/github_forge.ts";
import {
  type JobMessage,
  type MessageSession,
  ScaleSetError,
  type ScaleSetMessage,
  type ScaleSetStatistics,
  sleep,
} from "../forge/github/scale_set/mod.ts";

/** What a listener tells the daemon. */
export interface ScaleSetEvents {
  statistics(config: MachineConfig, statistics: ScaleSetStatistics): void;
  jobStarted(config: MachineConfig, job: JobMessage): void;
  /** The most machines of this type the host could have now. */
  capacity(config: MachineConfig): number;
}

export type ScaleSetForge = Pick<
  GitHubForge,
  "ensureScaleSet" | "forgetScaleSet" | "openSession" | "deleteSession"
>;

export interface ScaleSetListenerOptions {
  readonly forge: ScaleSetForge;
  readonly config: MachineConfig;
  /** The session's owner name: the host's. */
  readonly owner: string;
  /** Where the session id is kept across a crash. */
  readonly baseDir: string;
  readonly events: ScaleSetEvents;
  /** First delay after a failure (ms), growing by half to MAX_BACKOFF. */
  readonly backoff?: number;
}

const FIRST_BACKOFF = 5_000;
const MAX_BACKOFF = 60_000;

export class ScaleSetListener {
  readonly #options: ScaleSetListenerOptions;
  readonly #log = getLogger(["forrest", "scale-set"]);
  readonly #stop = new AbortController();
  #session: MessageSession | undefined;
  #running: Promise<void> | undefined;
  /** The kind of the last failure logged, so a repeat is logged at debug. */
  #lastFailure: string | undefined;

  constructor(options: ScaleSetListenerOptions) {
    this.#options = options;
  }

  get config(): MachineConfig {
    return this.#options.config;
  }

  get spec(): ScaleSetSpec {
    const { config } = this.#options;
    return {
      name: config.scaleSet!,
      runnerGroup: config.runnerGroup,
      labels: runnerLabels(config),
    };
  }

  /** What is said in logs: the scale set and its machine type. */
  get #name(): string {
    return `${this.#options.config.scaleSet} (${
      tripletName(this.#options.config.triplet)
    })`;
  }

  start(): void {
    // Labels or the group may have changed since the scale set was found.
    this.#options.forge.forgetScaleSet(
      this.#options.config.triplet.scope,
      this.spec,
    );
    this.#running ??= this.#run().catch((error) =>
      this.#log.error("Scale set {scaleSet} stopped listening: {error}", {
        scaleSet: this.#name,
        error: errorText(error),
      })
    );
  }

  /** Stops polling and deletes the session (no more jobs come to it). */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running;
    const session = this.#session;
    this.#session = undefined;
    if (session === undefined) return;
    try {
      await session.close();
      await Deno.remove(this.#stateFile()).catch(() => {});
      this.#log.info("Scale set {scaleSet}: session closed", {
        scaleSet: this.#name,
      });
    } catch (error) {
      this.#log.warn(
        "Cannot close the session of scale set {scaleSet}: {error}",
        {
          scaleSet: this.#name,
          error: errorText(error),
        },
      );
    }
  }

  get #stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        const session = await this.#open();
        failures = 0;
        await this.#listen(session);
      } catch (error) {
        if (this.#stopped) break;
        failures++;
        this.#failed(error, failures);
        await this.#pause(failures);
      }
    }
  }

  /** The scale set, found or made, and a new session of it. */
  async #open(): Promise<MessageSession> {
    const { forge, config, owner } = this.#options;
    const scope = config.triplet.scope;
    const scaleSet = await forge.ensureScaleSet(scope, this.spec);
    const left = await this.#readState();
    if (left?.scaleSetId === scaleSet.id) {
      // An earlier Forrest's session (it crashed): its jobs are ours.
      await forge.deleteSession(scope, left.scaleSetId, left.sessionId)
        .catch(() => {});
    }
    let session: MessageSession;
    try {
      session = await forge.openSession(scope, scaleSet.id, owner);
    } catch (error) {
      // Gone between the lookup and now: look it up (or make it) again.
      if (error instanceof ScaleSetError && error.status === 404) {
        forge.forgetScaleSet(scope, this.spec);
      }
      throw error;
    }
    this.#session = session;
    await this.#writeState(scaleSet.id, session.sessionId);
    if (this.#lastFailure !== undefined) {
      this.#log.info("Scale set {scaleSet} listens again", {
        scaleSet: this.#name,
      });
      this.#lastFailure = undefined;
    } else {
      this.#log.info("Scale set {scaleSet} (id {id}) listens for jobs", {
        scaleSet: this.#name,
        id: scaleSet.id,
      });
    }
    this.#options.events.statistics(config, session.statistics);
    return session;
  }

  /**
   * Long-polls until the session is gone (then returns, for a new one)
   * or the listener stops. A failed poll is tried again on the same
   * session after a growing delay.
   */
  async #listen(session: MessageSession): Promise<void> {
    const { config, events } = this.#options;
    let lastMessageId = 0;
    let failures = 0;
    let statistics = session.statistics;
    while (!this.#stopped) {
      let message: ScaleSetMessage | undefined;
      try {
        message = await session.getMessage(
          lastMessageId,
          events.capacity(config),
          this.#stop.signal,
        );
        failures = 0;
        if (this.#lastFailure !== undefined) {
          this.#log.info("Scale set {scaleSet}: the queue answers again", {
            scaleSet: this.#name,
          });
          this.#lastFailure = undefined;
        }
      } catch (error) {
        if (this.#stopped) return;
        if (sessionGone(error)) {
          this.#forgetSession(error);
          return;
        }
        failures++;
        this.#failed(error, failures);
        await this.#pause(failures);
        continue;
      }
      if (message === undefined) {
        // Nothing came: the last statistics stand (the type's demand).
        events.statistics(config, statistics);
        continue;
      }
      statistics = message.statistics;
      await this.#handle(session, message);
      lastMessageId = message.messageId;
    }
  }

  /**
   * One message: jobs offered are acquired (GHES), runners that took a
   * job are reported, the statistics become the type's demand, and then
   * the message is acknowledged: if Forrest dies before that, it comes
   * again, and handling it twice changes nothing.
   */
  async #handle(session: MessageSession, message: ScaleSetMessage) {
    const { config, events } = this.#options;
    const offered = message.jobs.filter((job) =>
      job.messageType === "JobAvailable" && job.runnerRequestId > 0
    ).map((job) => job.runnerRequestId);
    if (offered.length > 0) {
      try {
        const acquired = await session.acquireJobs(offered);
        this.#log.info(
          "Scale set {scaleSet} acquired {count} of {offered} job(s)",
          {
            scaleSet: this.#name,
            count: acquired.length,
            offered: offered.length,
          },
        );
      } catch (error) {
        // Not acknowledged: the offer comes again.
        this.#log.warn("Scale set {scaleSet} cannot acquire jobs: {error}", {
          scaleSet: this.#name,
          error: errorText(error),
        });
        return;
      }
    }
    for (const job of message.jobs) this.#logJob(job);
    for (const job of message.jobs) {
      if (job.messageType === "JobStarted" && job.runnerName !== undefined) {
        events.jobStarted(config, job);
      }
    }
    events.statistics(config, message.statistics);
    try {
      await session.ack(message.messageId);
    } catch (error) {
      if (this.#stopped) return;
      this.#log.warn(
        "Scale set {scaleSet} cannot acknowledge message {id}: {error}",
        {
          scaleSet: this.#name,
          id: message.messageId,
          error: errorText(error),
        },
      );
    }
  }

  #logJob(job: JobMessage): void {
    const fields = {
      scaleSet: this.#name,
      job: job.jobId || String(job.runnerRequestId),
      repository: `${job.ownerName}/${job.repositoryName}`,
      runner: job.runnerName ?? "",
      result: job.result ?? "",
    };
    switch (job.messageType) {
      case "JobAvailable":
        this.#log.info(
          "Scale set {scaleSet}: job {job} of {repository} offered",
          fields,
        );
        break;
      case "JobAssigned":
        this.#log.info(
          "Scale set {scaleSet}: job {job} of {repository} assigned",
          fields,
        );
        break;
      case "JobStarted":
        this.#log.info(
          "Scale set {scaleSet}: job {job} of {repository} started on {runner}",
          fields,
        );
        break;
      case "JobCompleted":
        this.#log.info(
          "Scale set {scaleSet}: job {job} of {repository} completed ({result})",
          fields,
        );
        break;
    }
  }

  #forgetSession(error: unknown): void {
    const { forge, config } = this.#options;
    this.#session = undefined;
    forge.forgetScaleSet(config.triplet.scope, this.spec);
    this.#log.warn(
      "Scale set {scaleSet}: its session is gone ({error}); finding or " +
        "making the scale set again",
      { scaleSet: this.#name, error: errorText(error) },
    );
  }

  /** Logged as a warning once per kind of failure, then at debug. */
  #failed(error: unknown, failures: number): void {
    const kind = error instanceof ScaleSetError
      ? `${error.status}:${error.typeName}`
      : String(error);
    const conflict = error instanceof ScaleSetError && error.status === 409;
    const message = conflict
      ? "Scale set {scaleSet} has a session of another listener (another " +
        "Forrest with this name and runner group?); trying again: {error}"
      : "Scale set {scaleSet}: {error}; trying again";
    const fields = { scaleSet: this.#name, error: errorText(error), failures };
    if (kind === this.#lastFailure) this.#log.debug(message, fields);
    else this.#log.warn(message, fields);
    this.#lastFailure = kind;
  }

  async #pause(failures: number): Promise<void> {
    const first = this.#options.backoff ?? FIRST_BACKOFF;
    const delay = Math.min(MAX_BACKOFF, first * 1.5 ** (failures - 1));
    await sleep(delay, this.#stop.signal).catch(() => {});
  }

  #stateFile(): string {
    const { baseDir, config } = this.#options;
    return join(
      baseDir,
      "scale-sets",
      ...scopeSegments(config.triplet.scope),
      `${config.triplet.machine}.json`,
    );
  }

  async #readState(): Promise<
    { scaleSetId: number; sessionId: string } | undefined
  > {
    try {
      const json = JSON.parse(await Deno.readTextFile(this.#stateFile()));
      return typeof json.scaleSetId === "number" &&
          typeof json.sessionId === "string"
        ? json
        : undefined;
    } catch {
      return undefined;
    }
  }

  async #writeState(scaleSetId: number, sessionId: string): Promise<void> {
    const file = this.#stateFile();
    try {
      await Deno.mkdir(dirname(file), { recursive: true });
      const temp = `${file}.tmp`;
      await Deno.writeTextFile(temp, JSON.stringify({ scaleSetId, sessionId }));
      await Deno.rename(temp, file);
    } catch (error) {
      this.#log.warn("Cannot keep the session id in {file}: {error}", {
        file,
        error: errorText(error),
      });
    }
  }
}

/** The session or its scale set no longer exists: a new one is needed. */
function sessionGone(error: unknown): boolean {
  return error instanceof ScaleSetError &&
    (error.status === 404 || error.status === 401 ||
      error.is("MessageQueueNotFoundException") ||
      error.is("RunnerScaleSetNotFoundException"));
}
