/**
 * A client for QEMU's Machine Protocol over a Unix socket: JSON lines, a
 * greeting, `qmp_capabilities`, then commands and asynchronous events.
 *
 * One reader loop owns the socket: lines with `"event"` go to the event
 * listeners, the rest settle the command waiting under their `id`. Failures
 * have their own types, so callers can tell a refused command from a lost
 * connection from a timeout.
 */

export interface QmpEvent {
  readonly event: string;
  readonly data?: Readonly<Record<string, unknown>>;
  readonly timestamp?: {
    readonly seconds: number;
    readonly microseconds: number;
  };
}

export class QmpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** qemu answered the command with an error. */
export class QmpCommandError extends QmpError {
  readonly command: string;
  /** QMP's error class, e.g. "GenericError", "CommandNotFound". */
  readonly errorClass: string;

  constructor(command: string, errorClass: string, description: string) {
    super(`QMP command "${command}" failed: ${description} (${errorClass})`);
    this.command = command;
    this.errorClass = errorClass;
  }
}

/** The connection ended (qemu exited, or close() was called). */
export class QmpConnectionError extends QmpError {}

/** No answer in time. */
export class QmpTimeoutError extends QmpError {}

export interface QmpOptions {
  /** Milliseconds for the greeting and each command; 10 s by default. */
  readonly timeout?: number;
}

interface Pending {
  readonly command: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

type Listener = (event: QmpEvent) => void;

const DEFAULT_TIMEOUT = 10_000;
const encoder = new TextEncoder();

export class QmpClient {
  readonly #conn: Deno.UnixConn;
  readonly #timeout: number;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<Listener>();
  readonly #reading: Promise<void>;
  #greeting = Promise.withResolvers<unknown>();
  #nextId = 1;
  #closed: QmpConnectionError | undefined;

  private constructor(conn: Deno.UnixConn, options: QmpOptions) {
    this.#conn = conn;
    this.#timeout = options.timeout ?? DEFAULT_TIMEOUT;
    this.#reading = this.#read();
  }

  /**
   * Connects, waits for the greeting and enters command mode.
   *
   * @throws {Deno.errors.NotFound | Deno.errors.ConnectionRefused} when
   *   nothing listens at `path` (yet)
   * @throws {QmpError} when the peer does not speak QMP in time
   */
  static async connect(
    path: string,
    options: QmpOptions = {},
  ): Promise<QmpClient> {
    const conn = await Deno.connect({ transport: "unix", path });
    const client = new QmpClient(conn, options);
    try {
      await client.#withTimeout(client.#greeting.promise, "the QMP greeting");
      await client.execute("qmp_capabilities");
      return client;
    } catch (error) {
      await client.close();
      throw error;
    }
  }

  /** Whether the connection has ended. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Runs a command and returns its `return` value.
   *
   * @throws {QmpCommandError} qemu refused it
   * @throws {QmpConnectionError} the connection ended first
   * @throws {QmpTimeoutError} no answer within the timeout
   */
  async execute<T = unknown>(
    command: string,
    args?: Readonly<Record<string, unknown>>,
    options: QmpOptions = {},
  ): Promise<T> {
    if (this.#closed) throw this.#closed;
    const id = this.#nextId++;
    const answer = new Promise<unknown>((resolve, reject) => {
      this.#pending.set(id, { command, resolve, reject });
    });
    const message = args === undefined
      ? { execute: command, id }
      : { execute: command, arguments: args, id };
    try {
      await this.#write(`${JSON.stringify(message)}\n`);
      return await this.#withTimeout(
        answer,
        `QMP command "${command}"`,
        options.timeout,
      ) as T;
    } finally {
      this.#pending.delete(id);
    }
  }

  /** Calls `listener` for every event from now on; returns an unsubscribe. */
  onEvent(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The next event named one of `names`.
   *
   * @throws {QmpConnectionError} the connection ended first
   * @throws {QmpTimeoutError} none within `timeout` ms (none: wait forever)
   */
  nextEvent(
    names: string | readonly string[],
    options: { timeout?: number; signal?: AbortSignal } = {},
  ): Promise<QmpEvent> {
    if (this.#closed) return Promise.reject(this.#closed);
    const wanted = typeof names === "string" ? [names] : names;
    const { promise, resolve, reject } = Promise.withResolvers<QmpEvent>();
    const done = () => {
      unsubscribe();
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    };
    const unsubscribe = this.onEvent((event) => {
      if (!wanted.includes(event.event)) return;
      done();
      resolve(event);
    });
    const closeListener: Listener = (event) => {
      if (event.event !== CLOSED_EVENT) return;
      done();
      reject(this.#closed!);
    };
    this.#listeners.add(closeListener);
    const onAbort = () => {
      done();
      reject(options.signal!.reason);
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const timer = options.timeout === undefined ? undefined : setTimeout(() => {
      done();
      reject(
        new QmpTimeoutError(
          `No ${wanted.join(" or ")} event within ${options.timeout} ms`,
        ),
      );
    }, options.timeout);
    return promise.finally(() => this.#listeners.delete(closeListener));
  }

  /** Ends the connection; waiting calls fail with QmpConnectionError. */
  async close(): Promise<void> {
    if (!this.#closed) {
      try {
        this.#conn.close();
      } catch {
        // Already closed by the peer.
      }
    }
    await this.#reading;
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = "";
    let reason = "qemu closed the QMP connection";
    try {
      for await (const chunk of this.#conn.readable) {
        buffer += decoder.decode(chunk, { stream: true });
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (line !== "") this.#dispatch(line);
        }
      }
    } catch (error) {
      if (
        !(error instanceof Deno.errors.BadResource ||
          error instanceof Deno.errors.Interrupted)
      ) {
        reason = `QMP connection failed: ${(error as Error).message}`;
      } else {
        reason = "QMP connection closed";
      }
    }
    this.#closed = new QmpConnectionError(reason);
    this.#greeting.reject(this.#closed);
    this.#greeting.promise.catch(() => {});
    for (const pending of this.#pending.values()) pending.reject(this.#closed);
    this.#pending.clear();
    for (const listener of [...this.#listeners]) {
      listener({ event: CLOSED_EVENT });
    }
    this.#listeners.clear();
    try {
      this.#conn.close();
    } catch {
      // Closed already.
    }
  }

  #dispatch(line: string): void {
    let message: Record<string, unknown>;
    try {
      message = JSON.parse(line);
    } catch {
      return; // Not QMP; qemu never sends this, so ignore rather than die.
    }
    if ("QMP" in message) {
      this.#greeting.resolve(message.QMP);
    } else if (typeof message.event === "string") {
      for (const listener of [...this.#listeners]) {
        listener(message as unknown as QmpEvent);
      }
    } else if (typeof message.id === "number") {
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      if ("error" in message) {
        const error = message.error as { class?: string; desc?: string };
        pending.reject(
          new QmpCommandError(
            pending.command,
            error.class ?? "Unknown",
            error.desc ?? "",
          ),
        );
      } else {
        pending.resolve(message.return);
      }
    }
  }

  async #write(text: string): Promise<void> {
    let bytes = encoder.encode(text);
    try {
      while (bytes.length > 0) {
        bytes = bytes.subarray(await this.#conn.write(bytes));
      }
    } catch {
      throw this.#closed ?? new QmpConnectionError("QMP connection closed");
    }
  }

  async #withTimeout<T>(
    promise: Promise<T>,
    what: string,
    timeout = this.#timeout,
  ): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new QmpTimeoutError(`No answer to ${what} within ${timeout} ms`),
          ),
        timeout,
      );
    });
    try {
      return await Promise.race([promise, expired]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Internal: tells waiting nextEvent() calls that the connection ended. */
const CLOSED_EVENT = "\0closed";
