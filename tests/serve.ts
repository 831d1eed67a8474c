/**
 * `forrest serve` as users run it, against the GitHub double: a temp base
 * folder, an App key and webhook secret, a config, the daemon as its own
 * process, and the double delivering webhooks to its Unix socket. Every
 * serve test goes through withServe(), which also checks that nothing is
 * left behind: no qemu process, no run disk, no OpenAPI violation.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Status } from "../src/core/mod.ts";
import { startForrest } from "./cli.ts";
import {
  type ApiDescription,
  generateAppKey,
  GitHubDouble,
  STANDIN_TEMPLATE_DIR,
} from "./github/mod.ts";
import {
  ForgejoDouble,
  STANDIN_RUNNER_VERSION,
  standinRunnerSha256,
} from "./forgejo/mod.ts";
import { filesUnder, processesUnder } from "./processes.ts";
import { pathOfLength, withTempDir } from "./temp.ts";

export const OWNER = "octo";
export const REPO = "app";
export const TOKEN = "persist-me-0123456789";
export const APP_ID = 4242;
export const WEBHOOK_SECRET = "webhook-secret-for-tests";

export interface ServeOptions {
  /** The machine's image (absolute). */
  readonly image: string;
  /** host.ram; the machine takes 1G. */
  readonly hostRam?: string;
  readonly pollingInterval?: string;
  /**
   * github.queued_polling_interval; the same as pollingInterval (the
   * quick poll off) unless given, so that its requests stay out of tests
   * that count requests or queue faults.
   */
  readonly queuedPollingInterval?: string;
  readonly janitorInterval?: string;
  readonly requestTimeout?: string;
  /** More `[repositories…]` TOML. */
  readonly extraToml?: string;
  /** The Debian machine's setup_template, as a TOML value. */
  readonly setupTemplate?: string;
  /** More keys of the Debian machine, as TOML lines. */
  readonly machineToml?: string;
  /** A TCP address (127.0.0.1:PORT) to serve on too; webhooks go there. */
  readonly tcp?: string;
  /** Environment variables for the daemon. */
  readonly env?: Readonly<Record<string, string>>;
  /** An existing folder for base_dir (a btrfs, for reflinks). */
  readonly baseDir?: string;
  /** A base_dir of this many bytes, in the test's temp folder. */
  readonly baseDirLength?: number;
  /** The repository whose Debian machine the config has: OWNER/REPO. */
  readonly owner?: string;
  readonly repo?: string;
  /** Which GitHub the double is (default github.com). */
  readonly github?: ApiDescription;
  /** Prepares the double before Forrest starts (organizations, groups). */
  readonly setup?: (double: GitHubDouble) => void;
  /** A personal access token: written to a file named by [github] token_file. */
  readonly token?: string;
  /** More keys of `[github]`, as TOML lines. */
  readonly githubToml?: string;
  /**
   * A double that outlives this serve (another serve shares it): not
   * started, set up or closed here; `setup` is not called.
   */
  readonly double?: GitHubDouble;
  /** The App's private key (PEM) that `double` was started with. */
  readonly appKey?: string;
  /** Whether the config has the repository's Debian machine (default true). */
  readonly repositoryMachine?: boolean;
  /**
   * A Forgejo double too, as `[forgejo.test]`, and a Forgejo repository
   * FORGEJO_OWNER/FORGEJO_REPO with a Debian machine on the built-in
   * Forgejo template (its runner downloaded from the double).
   */
  readonly forgejo?: {
    /** More keys of the repository's table, as TOML lines. */
    readonly repositoryToml?: string;
    readonly pollingInterval?: string;
  };
}

export interface Serving {
  readonly double: GitHubDouble;
  /** The Forgejo double, with ServeOptions.forgejo. */
  readonly forgejo: ForgejoDouble | undefined;
  readonly baseDir: string;
  readonly socket: string;
  /** The daemon's process id. */
  readonly pid: number;
  /**
   * Kills the daemon with SIGKILL (a crash: its VMs keep running) and
   * starts a new one on the same config and base_dir.
   */
  crashAndRestart(): Promise<void>;
  /** Sends a signal to the daemon. */
  kill(signal: Deno.Signal): void;
  /** Resolves when the daemon has exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** The App's private key (PEM), which must never be logged. */
  readonly privateKeyPem: string;
  /** The config file the daemon runs with. */
  readonly configFile: string;
  /** The daemon's log so far. */
  log(): string;
  /** Waits for a line of the log that includes `text`. */
  waitForLog(text: string, timeoutMs?: number): Promise<void>;
  status(): Promise<Status>;
  fetch(path: string, init?: RequestInit): Promise<Response>;
  /** Waits until `check` holds on the daemon's status. */
  waitForStatus(
    check: (status: Status) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<Status>;
}

/**
 * A 1 GiB, 1 vCPU machine of `image` on the runner stand-in, which reaches
 * the GitHub double on `doublePort` through its forward: TOML lines.
 */
export function standinMachineToml(
  image: string,
  doublePort: string,
  setupTemplate = `{ path = "${STANDIN_TEMPLATE_DIR}" }`,
): string {
  return `base_image = "${image}"
ram = "1G"
cpus = 1
network = "restricted"
forwards = [{ port = 80, to = "127.0.0.1:${doublePort}" }]
setup_template = ${setupTemplate}
`;
}

/** Labels a job of our machine has. */
export const LABELS = ["self-hosted", "forrest", "debian"];

/** The Forgejo repository of ServeOptions.forgejo, and its admin token. */
export const FORGEJO_OWNER = "alice";
export const FORGEJO_REPO = "firmware";
export const FORGEJO_TOKEN_FILE = "forgejo-token";

/**
 * `[forgejo.test]` and its repository's Debian machine: the built-in
 * Forgejo template, which downloads the runner stand-in from the double
 * (through the machine's forward, as guests cannot reach the host).
 */
async function forgejoToml(
  forgejo: ForgejoDouble,
  options: NonNullable<ServeOptions["forgejo"]>,
  image: string,
  dir: string,
): Promise<string> {
  forgejo.addUser("forrest-admin", { admin: true });
  forgejo.addUser(FORGEJO_OWNER);
  forgejo.addRepo(FORGEJO_OWNER, FORGEJO_REPO);
  const token = forgejo.addToken("forrest-admin", [
    "write:repository",
    "write:organization",
    "write:admin",
    "read:user",
  ]);
  await Deno.writeTextFile(join(dir, FORGEJO_TOKEN_FILE), `${token}\n`);
  const port = new URL(forgejo.url).port;
  const guest = "http://10.0.2.100:80";
  return `
[forgejo.test]
url = "${forgejo.url}"
guest_url = "${guest}"
token_file = "${FORGEJO_TOKEN_FILE}"
polling_interval = "${options.pollingInterval ?? "1s"}"

[repositories.${FORGEJO_OWNER}.${FORGEJO_REPO}]
forge = "test"
${options.repositoryToml ?? ""}

[repositories.${FORGEJO_OWNER}.${FORGEJO_REPO}.machines.debian]
base_image = "${image}"
ram = "1G"
cpus = 1
network = "restricted"
forwards = [{ port = 80, to = "127.0.0.1:${port}" }]
setup_template = { parameters = { FORGEJO_RUNNER_VERSION = "${STANDIN_RUNNER_VERSION}", FORGEJO_RUNNER_SHA256 = "${await standinRunnerSha256()}", FORGEJO_RUNNER_URL = "${guest}/_guest/forgejo/runner" } }
`;
}

export async function withServe(
  options: ServeOptions,
  body: (serving: Serving) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const baseDir = options.baseDir ??
      (options.baseDirLength === undefined
        ? join(dir, "base")
        : pathOfLength(dir, options.baseDirLength));
    if (options.baseDir === undefined) await Deno.mkdir(baseDir);
    const owner = options.owner ?? OWNER;
    const repo = options.repo ?? REPO;
    const keyPem = options.appKey ?? await generateAppKey();
    await Deno.writeTextFile(join(dir, "app.pem"), keyPem);
    await Deno.writeTextFile(
      join(dir, "webhook-secret"),
      `${WEBHOOK_SECRET}\n`,
    );
    const double = options.double ?? await GitHubDouble.start({
      appId: APP_ID,
      privateKeyPem: keyPem,
      webhookSecret: WEBHOOK_SECRET,
      ...(options.github ? { description: options.github } : {}),
    });
    if (options.token !== undefined) {
      await Deno.writeTextFile(join(dir, "token"), `${options.token}\n`);
    }
    const forgejo = options.forgejo ? await ForgejoDouble.start() : undefined;
    let forrest: Deno.ChildProcess | undefined;
    let logText = "";
    let reading: Promise<void> | undefined;
    try {
      if (options.double === undefined) {
        double.addRepo(owner, repo);
        options.setup?.(double);
      }
      const port = new URL(double.url).port;
      const forgejoTable = forgejo
        ? await forgejoToml(forgejo, options.forgejo!, options.image, dir)
        : "";
      await Deno.writeTextFile(
        join(dir, "forrest.toml"),
        `[host]
base_dir = "${baseDir}"
ram = "${options.hostRam ?? "4G"}"
accel = "tcg"

[server]
listen = ["unix:api.sock"${options.tcp ? `, "${options.tcp}"` : ""}]

[github]
app_id = ${APP_ID}
private_key_file = "app.pem"
webhook_secret_file = "webhook-secret"
api_url = "${double.url}"
polling_interval = "${options.pollingInterval ?? "10m"}"
queued_polling_interval = "${
          options.queuedPollingInterval ?? options.pollingInterval ?? "10m"
        }"
janitor_interval = "${options.janitorInterval ?? "2s"}"
request_timeout = "${options.requestTimeout ?? "30s"}"
${options.token === undefined ? "" : 'token_file = "token"'}
${options.githubToml ?? ""}
${
          options.repositoryMachine === false ? "" : `
[repositories."${owner}"."${repo}"]
persistence_token = "${TOKEN}"

[repositories."${owner}"."${repo}".machines.debian]
${standinMachineToml(options.image, port, options.setupTemplate)}${
            options.machineToml ?? ""
          }`
        }
${options.extraToml ?? ""}
${forgejoTable}`,
      );
      let exited = false;
      const launch = () => {
        const child = startForrest(["serve", "--config", "forrest.toml"], {
          cwd: dir,
          ...(options.env ? { env: options.env } : {}),
        });
        child.stdin.close();
        child.stdout.cancel();
        reading = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
          new WritableStream({ write: (chunk) => void (logText += chunk) }),
        );
        exited = false;
        child.status.then(() => {
          if (forrest === child) exited = true;
        });
        forrest = child;
        return child;
      };
      launch();
      const socket = join(baseDir, "api.sock");
      double.setWebhookTarget(
        options.tcp
          ? { url: `http://${options.tcp}/webhook` }
          : { unixSocket: socket },
      );
      const serving = servingOf(
        double,
        forgejo,
        baseDir,
        socket,
        join(dir, "forrest.toml"),
        () => logText,
        () => exited,
      );
      await serving.waitForLog("Serving", 60_000);
      await body({
        ...serving,
        privateKeyPem: keyPem,
        get pid() {
          return forrest!.pid;
        },
        kill: (signal) => forrest!.kill(signal),
        get exited() {
          return forrest!.status;
        },
        crashAndRestart: async () => {
          forrest!.kill("SIGKILL");
          await forrest!.status;
          await reading;
          const before = logText.split("Serving").length;
          launch();
          const deadline = Date.now() + 60_000;
          while (logText.split("Serving").length <= before) {
            if (exited || Date.now() > deadline) {
              throw new Error("the restarted forrest did not start serving");
            }
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        },
      });
    } catch (error) {
      console.error(`--- forrest serve log ---\n${logText}`);
      throw error;
    } finally {
      if (forrest) {
        try {
          forrest.kill("SIGTERM");
        } catch { /* exited already */ }
        const status = await forrest.status;
        await reading;
        if (!status.success) {
          console.error(`--- forrest serve log ---\n${logText}`);
        }
        assert.equal(status.code, 0, "forrest serve exits 0 on SIGTERM");
      }
      if (options.double === undefined) await double.close();
      await forgejo?.close();
      assert.deepEqual(await processesUnder(baseDir), [], "processes left");
      const disks = (await filesUnder(baseDir).catch(() => [])).filter((f) =>
        f.startsWith("runs/") && /\/disk\.(raw|qcow2|img)$/.test(f)
      );
      assert.deepEqual(disks, [], "run disks left");
      const sockets = await Array.fromAsync(
        Deno.readDir(join(baseDir, "sockets")),
      ).catch(() => []);
      assert.deepEqual(sockets, [], "run socket folders left");
    }
  });
}

type BaseServing = Omit<
  Serving,
  "kill" | "exited" | "pid" | "crashAndRestart" | "privateKeyPem"
>;

function servingOf(
  double: GitHubDouble,
  forgejo: ForgejoDouble | undefined,
  baseDir: string,
  socket: string,
  configFile: string,
  log: () => string,
  exited: () => boolean,
): BaseServing {
  const fetchApi = async (path: string, init?: RequestInit) => {
    const client = Deno.createHttpClient({
      proxy: { transport: "unix", path: socket },
    });
    try {
      const response = await fetch(`http://forrest${path}`, {
        ...init,
        client,
      });
      const body = await response.arrayBuffer();
      return new Response(body, {
        status: response.status,
        headers: response.headers,
      });
    } finally {
      client.close();
    }
  };
  const waitUntil = async <T>(
    get: () => Promise<T> | T,
    check: (value: T) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await get();
      if (check(value)) return value;
      if (Date.now() > deadline) {
        throw new Error(
          `Timed out after ${timeoutMs} ms waiting for ${what}: ${
            JSON.stringify(value)
          }`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  const status = async () => await (await fetchApi("/status")).json() as Status;
  return {
    double,
    forgejo,
    baseDir,
    socket,
    configFile,
    log,
    fetch: fetchApi,
    status,
    waitForLog: async (text, timeoutMs = 60_000) => {
      await waitUntil(
        () => {
          const current = log();
          if (exited()) throw new Error("forrest serve exited");
          return current;
        },
        (l) => l.includes(text),
        timeoutMs,
        `"${text}"`,
      );
    },
    waitForStatus: (check, timeoutMs, what) =>
      waitUntil(status, check, timeoutMs, what),
  };
}

/**
 * Queues a job of the Debian machine that runs `script`, and waits until
 * its VM runs it.
 */
export async function runningJob(s: Serving, script: string) {
  const job = await s.double.queueJob({
    owner: OWNER,
    repo: REPO,
    labels: LABELS,
    script,
  });
  const status = await s.waitForStatus(
    (st) => st.machines.some((m) => m.state === "running"),
    240_000,
    "the machine running its job",
  );
  const runner = status.machines.find((m) => m.state === "running")!.runner;
  const runDir = join(s.baseDir, "runs", OWNER, REPO, "debian", runner);
  return { job, runner, runDir };
}
