/**
 * A message session of one scale set: the long-polled queue, its
 * acknowledgements, and `acquirejobs`, each with the queue token. A 401 on
 * any of them means the token expired (perhaps while the poll blocked): the
 * session is refreshed once (PATCH) and the call tried again, as
 * actions/scaleset does (C.7).
 */

import { Secret } from "../../../log/mod.ts";
import { type ActionsService, ScaleSetError } from "./actions_service.ts";
import {
  parseMessage,
  type ScaleSetMessage,
  type ScaleSetSession,
  type ScaleSetStatistics,
} from "./types.ts";

/** How long a long poll may block before it counts as hung (~50 s usual). */
export const LONG_POLL_TIMEOUT = 100_000;

export class MessageSession {
  readonly #service: ActionsService;
  readonly scaleSetId: number;
  #session: ScaleSetSession;
  #token: Secret;

  readonly #pollTimeout: number;

  constructor(
    service: ActionsService,
    scaleSetId: number,
    session: ScaleSetSession,
    /** How long a poll may block before it is given up (ms). */
    pollTimeout = LONG_POLL_TIMEOUT,
  ) {
    this.#pollTimeout = pollTimeout;
    this.#service = service;
    this.scaleSetId = scaleSetId;
    this.#session = session;
    this.#token = new Secret(session.messageQueueAccessToken);
  }

  get sessionId(): string {
    return this.#session.sessionId;
  }

  /** The statistics the session came with: the first scaling decision. */
  get statistics(): ScaleSetStatistics {
    return this.#session.statistics;
  }

  /**
   * The next message after `lastMessageId` (0: the first not
   * acknowledged), or undefined when none came within the service's
   * window (202). `maxCapacity` tells the service how many runners this
   * host can make, so that it assigns no more jobs than that.
   */
  async getMessage(
    lastMessageId: number,
    maxCapacity: number,
    signal?: AbortSignal,
  ): Promise<ScaleSetMessage | undefined> {
    const answer = await this.#withToken((token) => {
      const url = new URL(this.#session.messageQueueUrl);
      if (lastMessageId > 0) {
        url.searchParams.set("lastMessageId", String(lastMessageId));
      }
      return this.#service.request("GET", url.toString(), {
        absolute: true,
        token,
        once: true,
        timeout: this.#pollTimeout,
        headers: {
          accept: "application/json; api-version=6.0-preview",
          "x-scalesetmaxcapacity": String(Math.max(0, maxCapacity)),
        },
        ...(signal ? { signal } : {}),
      });
    });
    if (answer.status === 202 || answer.json === undefined) {
      if (answer.status === 200) {
        // "StatusCode 200 … EOF" (ARC #4285): an answer with nothing in it.
        throw new ScaleSetError(
          "the message queue answered 200 with an empty body",
          200,
          undefined,
        );
      }
      return undefined;
    }
    return parseMessage(answer.json);
  }

  /** Acknowledges a message: it is not delivered again. */
  async ack(messageId: number): Promise<void> {
    await this.#withToken((token) => {
      const url = new URL(this.#session.messageQueueUrl);
      url.pathname = `${url.pathname.replace(/\/+$/, "")}/${messageId}`;
      return this.#service.request("DELETE", url.toString(), {
        absolute: true,
        token,
      });
    });
  }

  /** Takes the jobs the service offers (JobAvailable, on GHES); the ids won. */
  async acquireJobs(requestIds: readonly number[]): Promise<number[]> {
    if (requestIds.length === 0) return [];
    const answer = await this.#withToken((token) =>
      this.#service.request(
        "POST",
        `_apis/runtime/runnerscalesets/${this.scaleSetId}/acquirejobs`,
        { token, body: [...requestIds] },
      )
    );
    const value = (answer.json as Record<string, unknown> | undefined)?.value;
    return Array.isArray(value)
      ? value.filter((id): id is number => typeof id === "number")
      : [];
  }

  /** Ends the session on the service; one that is gone is not an error. */
  async close(): Promise<void> {
    await this.#service.deleteSession(this.scaleSetId, this.sessionId);
  }

  async #withToken<T>(call: (token: Secret) => Promise<T>): Promise<T> {
    try {
      return await call(this.#token);
    } catch (error) {
      if (!(error instanceof ScaleSetError) || error.status !== 401) {
        throw error;
      }
      const session = await this.#service.refreshSession(
        this.scaleSetId,
        this.sessionId,
      );
      this.#session = session;
      this.#token = new Secret(session.messageQueueAccessToken);
      return await call(this.#token);
    }
  }
}
