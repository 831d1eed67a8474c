/**
 * A thin driver for headless Chromium over the Chrome DevTools Protocol, for
 * tests of the dashboard in a real browser. Puppeteer would bring a download
 * of its own Chrome and hundreds of files; Debian's `chromium` and Deno's
 * WebSocket are all this needs.
 *
 * One WebSocket to the browser; each page is a target attached with
 * flattened sessions, so its commands and events carry its `sessionId`.
 */

/** A running headless Chromium, alive for the body of `withBrowser()`. */
export interface Browser {
  /** Chromium's pid, also its process group (a session of its own). */
  readonly pid: number;
  /** The throw-away profile folder, removed when the browser is. */
  readonly profileDir: string;
  /** A new tab showing `url`, once its load event fired. */
  open(url: string): Promise<Page>;
}

/** One tab. */
export interface Page {
  /** The value of a JS expression (promises awaited); throws what it threw. */
  evaluate<T>(expression: string): Promise<T>;
  /** Polls a JS expression until it is truthy; throws naming `what`. */
  waitFor(expression: string, timeoutMs: number, what: string): Promise<void>;
  /** innerText of the first element `selector` matches, "" if none does. */
  text(selector: string): Promise<string>;
  /** Writes a PNG of the 1280×900 viewport to `path`. */
  screenshot(path: string): Promise<void>;
  /** Main-frame navigations since `open()` finished: 0 proves no reload. */
  reloads(): number;
  /**
   * Uncaught exceptions, `console.error` calls, the browser's own error
   * messages (failed loads, CSP violations) and JS dialogs, in order.
   */
  consoleErrors(): string[];
  close(): Promise<void>;
}

export interface BrowserOptions {
  /** Limit for starting Chromium, each command and each page load. */
  timeoutMs?: number;
}

/** Chromium answered a command with an error. */
export class CdpError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    detail: string,
  ) {
    super(`Chromium refused "${method}": ${detail} (code ${code})`);
    this.name = "CdpError";
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
const BINARIES = ["chromium", "chromium-browser"];

/**
 * Runs `body` with a fresh headless Chromium and ends it afterwards however
 * `body` ends: the browser and every helper process it started are gone and
 * its profile folder is removed before this returns.
 */
export async function withBrowser<T>(
  body: (browser: Browser) => Promise<T>,
  options: BrowserOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const binary = await findChromium();
  const profileDir = await Deno.makeTempDir({ prefix: "forrest-chromium-" });
  let chromium: Chromium | undefined;
  let connection: Connection | undefined;
  try {
    chromium = new Chromium(binary, profileDir);
    connection = await Connection.open(
      await chromium.devToolsUrl(timeoutMs),
      timeoutMs,
    );
    return await body(new CdpBrowser(connection, chromium.pid, profileDir));
  } finally {
    if (connection) {
      // Asking first lets Chromium end its helpers itself; killing is the
      // fallback below. It may hang up before it answers.
      await connection.send("Browser.close", {}, undefined, 2_000)
        .catch(() => {});
      await connection.close();
    }
    // Without a connection there is nothing to wait for.
    await chromium?.stop(connection ? 5_000 : 0);
    await Deno.remove(profileDir, { recursive: true });
  }
}

async function findChromium(): Promise<string> {
  const dirs = (Deno.env.get("PATH") ?? "").split(":").filter(Boolean);
  for (const name of BINARIES) {
    for (const dir of dirs) {
      const path = `${dir}/${name}`;
      const info = await Deno.stat(path).catch(() => undefined);
      if (info?.isFile && (info.mode ?? 0o111) & 0o111) return path;
    }
  }
  throw new Deno.errors.NotFound(
    `Cannot find ${BINARIES.join(" or ")} on PATH: install Debian's ` +
      `"chromium" package (scripts/setup.sh does)`,
  );
}

/** The Chromium process, its stderr kept for error messages. */
class Chromium {
  readonly pid: number;
  #child: Deno.ChildProcess;
  #reader: ReadableStreamDefaultReader<string>;
  #reading: Promise<void>;
  #lines: string[] = [];
  #url = Promise.withResolvers<string>();

  constructor(binary: string, profileDir: string) {
    this.#child = new Deno.Command(binary, {
      args: [
        "--headless=new",
        // Chromium will not start as root with its sandbox; the pages it
        // shows are the test's own.
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--mute-audio",
        `--user-data-dir=${profileDir}`,
        // Port 0: Chromium picks a free one and prints it on stderr.
        "--remote-debugging-port=0",
        "--remote-debugging-address=127.0.0.1",
        "--window-size=1280,900",
        "about:blank",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      // A session of its own, so that stop() can kill the whole group: a
      // helper that outlived the browser would hold stderr open.
      detached: true,
    }).spawn();
    this.pid = this.#child.pid;
    this.#reader = this.#child.stderr.pipeThrough(new TextDecoderStream())
      .getReader();
    this.#reading = this.#read();
    // Read by devToolsUrl(); a failed start must not be an unhandled one.
    this.#url.promise.catch(() => {});
  }

  async #read(): Promise<void> {
    let partial = "";
    try {
      for (;;) {
        const { value, done } = await this.#reader.read();
        if (done) break;
        const lines = (partial + value).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          const url = /DevTools listening on (ws:\/\/\S+)/.exec(line)?.[1];
          if (url) this.#url.resolve(url);
          // Chromium is chatty (D-Bus): the last lines are the ones to show.
          this.#lines.push(line);
          if (this.#lines.length > 40) this.#lines.shift();
        }
      }
    } catch {
      // Cancelled by stop().
    }
    if (partial) this.#lines.push(partial);
    this.#url.reject(
      new Error(`Chromium exited before it listened:\n${this.stderr()}`),
    );
  }

  stderr(): string {
    return this.#lines.join("\n");
  }

  async devToolsUrl(timeoutMs: number): Promise<string> {
    return await deadline(
      this.#url.promise,
      timeoutMs,
      () =>
        `Chromium did not print its DevTools address within ${timeoutMs} ms:\n${this.stderr()}`,
    );
  }

  /** Waits up to `graceMs` for Chromium to exit, then kills its group. */
  async stop(graceMs: number): Promise<void> {
    await deadline(this.#child.status, graceMs, () => "").catch(() => {});
    try {
      Deno.kill(-this.pid, "SIGKILL");
    } catch {
      // The whole group has exited already.
    }
    await this.#child.status;
    // SIGKILL takes a moment to tear a renderer down; callers may look for
    // leftover processes right after withBrowser() returns.
    const end = Date.now() + 2_000;
    while (Date.now() < end && await hasLiveMembers(this.pid)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await deadline(this.#reading, 2_000, () => "").catch(() =>
      this.#reader.cancel()
    );
  }
}

/** Whether a process of group `pgid` still runs (zombies hold nothing). */
async function hasLiveMembers(pgid: number): Promise<boolean> {
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`)
      .catch(() => "");
    // After "(command name)": state, ppid, pgrp.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") return true;
  }
  return false;
}

type Params = Record<string, unknown>;
type Listener = (method: string, params: Params) => void;
interface Pending {
  method: string;
  resolve: (result: Params) => void;
  reject: (error: Error) => void;
}

/** One WebSocket: answers matched by id, events routed by session. */
class Connection {
  #socket: WebSocket;
  #timeoutMs: number;
  #nextId = 1;
  #pending = new Map<number, Pending>();
  #sessions = new Map<string, Listener>();
  #closed = Promise.withResolvers<void>();
  #isClosed = false;

  private constructor(socket: WebSocket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.onmessage = (event) => this.#receive(String(event.data));
    socket.onclose = () => {
      this.#isClosed = true;
      for (const pending of this.#pending.values()) {
        pending.reject(
          new Error(`Chromium hung up before it answered "${pending.method}"`),
        );
      }
      this.#pending.clear();
      this.#closed.resolve();
    };
  }

  static async open(url: string, timeoutMs: number): Promise<Connection> {
    const socket = new WebSocket(url);
    const opened = new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = (event) =>
        reject(
          new Error(
            `Cannot connect to Chromium at "${url}": ${
              (event as ErrorEvent).message
            }`,
          ),
        );
    });
    const connection = new Connection(socket, timeoutMs);
    try {
      await deadline(
        opened,
        timeoutMs,
        () => `Cannot connect to Chromium at "${url}" within ${timeoutMs} ms`,
      );
    } catch (error) {
      await connection.close();
      throw error;
    }
    return connection;
  }

  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  #receive(data: string): void {
    const message = JSON.parse(data);
    if (typeof message.id === "number") {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (!pending) return;
      if (message.error) {
        pending.reject(
          new CdpError(
            pending.method,
            message.error.code,
            [message.error.message, message.error.data].filter(Boolean)
              .join(": "),
          ),
        );
      } else pending.resolve(message.result ?? {});
    } else if (typeof message.sessionId === "string") {
      this.#sessions.get(message.sessionId)?.(
        message.method,
        message.params ?? {},
      );
    }
  }

  listen(sessionId: string, listener: Listener | undefined): void {
    if (listener) this.#sessions.set(sessionId, listener);
    else this.#sessions.delete(sessionId);
  }

  async send(
    method: string,
    params: Params = {},
    sessionId?: string,
    timeoutMs = this.#timeoutMs,
  ): Promise<Params> {
    if (this.#isClosed) {
      throw new Error(`Cannot send "${method}": Chromium hung up`);
    }
    const id = this.#nextId++;
    const answer = new Promise<Params>((resolve, reject) =>
      this.#pending.set(id, { method, resolve, reject })
    );
    this.#socket.send(JSON.stringify({ id, method, params, sessionId }));
    try {
      return await deadline(
        answer,
        timeoutMs,
        () => `Chromium did not answer "${method}" within ${timeoutMs} ms`,
      );
    } finally {
      this.#pending.delete(id);
    }
  }

  async close(): Promise<void> {
    if (!this.#isClosed) this.#socket.close();
    // A browser that is gone already cannot finish the closing handshake.
    await deadline(this.#closed.promise, 2_000, () => "").catch(() => {});
  }
}

class CdpBrowser implements Browser {
  #connection: Connection;
  constructor(
    connection: Connection,
    readonly pid: number,
    readonly profileDir: string,
  ) {
    this.#connection = connection;
  }

  async open(url: string): Promise<Page> {
    const { targetId } = await this.#connection.send("Target.createTarget", {
      url: "about:blank",
    });
    const { sessionId } = await this.#connection.send("Target.attachToTarget", {
      targetId,
      flatten: true,
    });
    const page = new CdpPage(
      this.#connection,
      String(targetId),
      String(sessionId),
    );
    try {
      await page.navigate(url);
    } catch (error) {
      await page.close().catch(() => {});
      throw error;
    }
    return page;
  }
}

class CdpPage implements Page {
  #connection: Connection;
  #targetId: string;
  #sessionId: string;
  #navigations = 0;
  #navigationsAtOpen = 0;
  #errors: string[] = [];
  #loadWaiters = new Set<() => void>();
  #closed = false;

  constructor(connection: Connection, targetId: string, sessionId: string) {
    this.#connection = connection;
    this.#targetId = targetId;
    this.#sessionId = sessionId;
    connection.listen(
      sessionId,
      (method, params) => this.#event(method, params),
    );
  }

  #send(
    method: string,
    params: Params = {},
    timeoutMs = this.#connection.timeoutMs,
  ): Promise<Params> {
    return this.#connection.send(method, params, this.#sessionId, timeoutMs);
  }

  #event(method: string, params: Params): void {
    switch (method) {
      case "Page.frameNavigated": {
        const frame = params.frame as { parentId?: string };
        if (!frame.parentId) this.#navigations++;
        break;
      }
      case "Page.loadEventFired":
        for (const waiter of this.#loadWaiters) waiter();
        break;
      case "Runtime.exceptionThrown": {
        const details = params.exceptionDetails as {
          text: string;
          exception?: { description?: string };
        };
        this.#errors.push(details.exception?.description ?? details.text);
        break;
      }
      case "Runtime.consoleAPICalled":
        if (params.type === "error" || params.type === "assert") {
          this.#errors.push(
            (params.args as RemoteObject[]).map(describe).join(" "),
          );
        }
        break;
      case "Log.entryAdded": {
        const entry = params.entry as {
          level: string;
          text: string;
          url?: string;
        };
        if (entry.level !== "error" || isFaviconUrl(entry.url)) break;
        // "Failed to load resource" says which status but not which URL.
        this.#errors.push(
          entry.url ? `${entry.text} (${entry.url})` : entry.text,
        );
        break;
      }
      case "Page.javascriptDialogOpening":
        // An open dialog blocks every later evaluate until the timeout:
        // dismiss it and report it instead.
        this.#errors.push(`${params.type} dialog: ${params.message}`);
        this.#send("Page.handleJavaScriptDialog", { accept: false })
          .catch(() => {});
        break;
    }
  }

  async navigate(url: string): Promise<void> {
    await Promise.all([
      this.#send("Page.enable"),
      this.#send("Runtime.enable"),
      this.#send("Log.enable"),
      // The window's size minus headless Chromium's frame is not the
      // viewport one asked for; screenshots should not depend on it.
      this.#send("Emulation.setDeviceMetricsOverride", {
        width: 1280,
        height: 900,
        deviceScaleFactor: 1,
        mobile: false,
      }),
    ]);
    const loaded = Promise.withResolvers<void>();
    this.#loadWaiters.add(loaded.resolve);
    try {
      const { errorText } = await this.#send("Page.navigate", { url });
      if (errorText) throw new Error(`Cannot load "${url}": ${errorText}`);
      const ms = this.#connection.timeoutMs;
      await deadline(
        loaded.promise,
        ms,
        () => `"${url}" did not fire its load event within ${ms} ms`,
      );
    } finally {
      this.#loadWaiters.delete(loaded.resolve);
    }
    this.#navigationsAtOpen = this.#navigations;
  }

  evaluate<T>(expression: string): Promise<T> {
    return this.#evaluate(expression, this.#connection.timeoutMs);
  }

  async #evaluate<T>(expression: string, timeoutMs: number): Promise<T> {
    const { result, exceptionDetails } = await this.#send("Runtime.evaluate", {
      expression,
      returnByValue: true,
      awaitPromise: true,
    }, timeoutMs) as {
      result: RemoteObject;
      exceptionDetails?: ExceptionDetails;
    };
    if (exceptionDetails) {
      throw new Error(
        `Cannot evaluate "${expression}": ${
          exceptionDetails.exception?.description ?? exceptionDetails.text
        }`,
      );
    }
    return result.value as T;
  }

  async waitFor(
    expression: string,
    timeoutMs: number,
    what: string,
  ): Promise<void> {
    const end = Date.now() + timeoutMs;
    let lastError = "";
    for (;;) {
      try {
        // A page stuck in a loop must not stretch the wait much, but a busy
        // machine should get a fair last try.
        const left = Math.max(end - Date.now(), 1_000);
        if (await this.#evaluate<unknown>(expression, left)) return;
        lastError = "";
      } catch (error) {
        // While a page navigates, its context is gone for a moment.
        if (this.#connection.isClosed || this.#closed) throw error;
        lastError = error instanceof Error ? error.message : String(error);
      }
      if (Date.now() >= end) {
        throw new Error(
          `Timed out after ${timeoutMs} ms waiting for ${what}` +
            (lastError ? `: ${lastError}` : ""),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async text(selector: string): Promise<string> {
    return await this.evaluate<string>(`(() => {
      const element = document.querySelector(${JSON.stringify(selector)});
      if (!element) return "";
      return element instanceof HTMLElement
        ? element.innerText
        : element.textContent ?? "";
    })()`);
  }

  async screenshot(path: string): Promise<void> {
    const { data } = await this.#send("Page.captureScreenshot", {
      format: "png",
    });
    await Deno.writeFile(path, Uint8Array.fromBase64(String(data)));
  }

  reloads(): number {
    return this.#navigations - this.#navigationsAtOpen;
  }

  consoleErrors(): string[] {
    return [...this.#errors];
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#connection.listen(this.#sessionId, undefined);
    await this.#connection.send("Target.closeTarget", {
      targetId: this.#targetId,
    });
  }
}

interface RemoteObject {
  type: string;
  value?: unknown;
  description?: string;
}

interface ExceptionDetails {
  text: string;
  exception?: RemoteObject;
}

/**
 * Chromium asks for /favicon.ico by itself, some time after the load event:
 * its 404 is not the page's error, and would make assertions racy.
 */
function isFaviconUrl(url: string | undefined): boolean {
  return url !== undefined && URL.parse(url)?.pathname === "/favicon.ico";
}

function describe(object: RemoteObject): string {
  if (typeof object.value === "string") return object.value;
  if ("value" in object) return JSON.stringify(object.value);
  return object.description ?? object.type;
}

/** `promise`, or a rejection with `message()` after `ms`; no timer left. */
async function deadline<T>(
  promise: Promise<T>,
  ms: number,
  message: () => string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message())), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
