/**
 * `forrest serve`: reads the config and the App's secrets, serves the API,
 * runs the daemon, re-reads the config when it changes, and stops cleanly
 * on SIGINT or SIGTERM.
 */

import { getLogger } from "@logtape/logtape";
import {
  type Config,
  ConfigReloader,
  forgeOf,
  type GitHubConfig,
  readConfig,
  readSecretFile,
  readWebhookSecret,
  WebhookSecretError,
} from "../config/mod.ts";
import {
  ForgejoForge,
  forgejoStateDir,
  ForgeSetupError,
  GitHubForge,
} from "../forge/mod.ts";
import { Secret } from "../log/mod.ts";
import { GuestApi } from "../guest_api/mod.ts";
import { apiApp, Daemon, listenAll, notifySystemd } from "../serve/mod.ts";
import { describeScopes } from "./config_check.ts";
import { UsageError } from "./exit.ts";
import { DEFAULT_CONFIG } from "./host_settings.ts";

export interface ServeFlags {
  readonly config?: string;
}

export async function serveCommand(
  flags: ServeFlags,
  context: { env: (name: string) => string | undefined },
): Promise<number> {
  const log = getLogger(["forrest", "serve"]);
  const file = flags.config ?? context.env("FORREST_CONFIG") ?? DEFAULT_CONFIG;
  const loaded = await readConfig(file);
  const { config } = loaded;
  const usesGitHub = config.scopes.some((s) => forgeOf(s.scope) === undefined);
  if (
    config.github === undefined && (usesGitHub || config.forgejo.length === 0)
  ) {
    throw new UsageError(
      `${file} has no [github] table: forrest serve needs a GitHub App or a token (docs/github-app.md)` +
        (config.forgejo.length > 0
          ? ' for the scopes without forge = "NAME"'
          : ", or a [forgejo.NAME] table (docs/forgejo.md)"),
    );
  }
  const github = config.github && await gitHubForge(config.github);
  const forgejo = await forgejoForges(config);
  const guestApi = new GuestApi({
    observe: (outcome, bytes) => daemon.metrics.guestApiAnswer(outcome, bytes),
  });
  const daemon = new Daemon({
    config,
    forges: {
      github: github?.forge,
      forgejo: new Map(forgejo.map((f) => [f.forge.name, f.forge])),
    },
    guestApi,
  });
  // After the daemon: the first request's outcome goes to its metrics.
  await guestApi.listen();
  log.debug("Guest API on 127.0.0.1:{port}", { port: guestApi.port });
  // The first signal stops gracefully; a second one hurries it along.
  const stop = new AbortController();
  const hurry = new AbortController();
  const onSignal = () => stop.signal.aborted ? hurry.abort() : stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  const listening = await listenAll(
    config.server.listen,
    config.server.socketMode,
    apiApp(daemon).fetch,
  );
  // Not "addresses": the redaction drops fields named like e-mail ones.
  log.info("Listening on {listen}", { listen: listening.addresses.join(", ") });
  // Every reload reads the webhook secret again (the file's contents too),
  // as the original did at every delivery.
  const reloader = new ConfigReloader(file, loaded, {
    ...(github?.webhookSecret ? { webhookSecret: github.webhookSecret } : {}),
    onWebhookSecret: (secret) => github?.forge.setWebhookSecret(secret),
    onChange: (next) => {
      warnUnreloadable(config, next);
      daemon.setConfig(next);
    },
  });
  const watching = reloader.watch(stop.signal);
  // `systemctl reload` sends SIGHUP: re-read the file now (it is also
  // re-read whenever it changes), and the token file (a rotated token).
  const onHangup = () =>
    void reloader.reload().then(() =>
      Promise.all([
        rereadToken(github?.tokenFile, (t) => github?.forge.setToken(t)),
        ...forgejo.map((f) =>
          rereadToken(f.tokenFile, (t) => f.forge.setToken(t))
        ),
      ])
    );
  Deno.addSignalListener("SIGHUP", onHangup);
  try {
    await daemon.start().catch((error) => {
      // A runner group that does not exist: the config must change.
      if (error instanceof ForgeSetupError) {
        throw new UsageError(
          error.message.startsWith("Forgejo")
            ? error.message
            : `GitHub: ${error.message}`,
        );
      }
      throw error;
    });
    const serving = `Serving ${describeScopes(config)}`;
    log.info(serving);
    await notifySystemd({ ready: true, status: serving });
    if (!stop.signal.aborted) {
      await new Promise((resolve) =>
        stop.signal.addEventListener("abort", resolve, { once: true })
      );
    }
    log.info("Stopping: no new machines; those without a job are stopped");
    await notifySystemd({
      stopping: true,
      status: "Stopping: running jobs may finish",
    });
  } finally {
    stop.abort();
    await daemon.stop(daemon.core.config.host.shutdownTimeout, hurry.signal);
    await listening.close();
    await guestApi.close();
    await watching;
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    Deno.removeSignalListener("SIGHUP", onHangup);
  }
  log.info("Stopped");
  return 0;
}

/**
 * The GitHub forge, with the App's key, the token and the webhook secret
 * read now. `tokenFile` is the file the token came from: a new path in a
 * reload needs a restart, like the App's settings; SIGHUP re-reads it.
 */
async function gitHubForge(config: GitHubConfig) {
  const secrets = await readSecrets(config);
  const forge = new GitHubForge({
    ...(config.app && secrets.privateKey
      ? { app: { appId: config.app.appId, privateKey: secrets.privateKey } }
      : {}),
    ...(secrets.token ? { token: secrets.token } : {}),
    ...(secrets.webhookSecret ? { webhookSecret: secrets.webhookSecret } : {}),
    apiUrl: config.apiUrl,
    requestTimeout: config.requestTimeout,
    scaleSets: config.discovery === "scale-set",
  });
  return {
    forge,
    tokenFile: config.tokenFile,
    webhookSecret: secrets.webhookSecret,
  };
}

/** One forge per `[forgejo.NAME]`, each with its token read now. */
function forgejoForges(config: Config) {
  return Promise.all(config.forgejo.map(async (instance) => {
    let token: Secret;
    try {
      token = await readSecretFile(instance.tokenFile, "token file");
    } catch (error) {
      throw new UsageError(
        `forgejo.${instance.name}: ${(error as Error).message}`,
      );
    }
    const forge = new ForgejoForge({
      config: instance,
      token,
      stateDir: forgejoStateDir(config.host.baseDir, instance.name),
    });
    return { forge, tokenFile: instance.tokenFile };
  }));
}

/** A new token from a token file (SIGHUP); a broken one keeps the old. */
async function rereadToken(
  path: string | undefined,
  use: (token: Secret) => void,
): Promise<void> {
  if (path === undefined) return;
  try {
    use(await readSecretFile(path, "token file"));
  } catch (error) {
    getLogger(["forrest", "config"]).error("{error}; the old token stays", {
      error: (error as Error).message,
    });
  }
}

/** The App's private key, the token and the webhook secret, read at start. */
async function readSecrets(github: GitHubConfig) {
  let privateKey: Secret | undefined;
  if (github.app) {
    try {
      privateKey = new Secret(
        await Deno.readTextFile(github.app.privateKeyFile),
      );
    } catch (error) {
      throw new UsageError(
        `Cannot read the GitHub App private key ${github.app.privateKeyFile}: ${
          (error as Error).message
        }`,
      );
    }
  }
  try {
    return {
      privateKey,
      token: github.tokenFile === undefined
        ? undefined
        : await readSecretFile(github.tokenFile, "token file"),
      webhookSecret: await readWebhookSecret(github),
    };
  } catch (error) {
    if (error instanceof WebhookSecretError) {
      throw new UsageError(error.message);
    }
    throw error;
  }
}

/** Settings that only a restart applies: say so rather than ignore them. */
function warnUnreloadable(old: Config, next: Config): void {
  const log = getLogger(["forrest", "config"]);
  const same = (a: unknown, b: unknown) =>
    JSON.stringify(a) === JSON.stringify(b);
  if (!same(old.server, next.server)) {
    log.warn("server.listen and server.socket_mode change on restart only");
  }
  // The webhook secret is not among them: every reload applies it.
  const github = (c: Config) => ({
    app: c.github?.app,
    token: c.github?.tokenFile,
    apiUrl: c.github?.apiUrl,
    discovery: c.github?.discovery,
  });
  if (!same(github(old), github(next))) {
    log.warn(
      "The GitHub settings (app_id, private_key_file, token_file, api_url, " +
        "discovery) " +
        "change on restart only; SIGHUP re-reads the token file's contents",
    );
  }
  // Polling intervals apply at the next round; the rest needs a restart.
  const forgejo = (c: Config) =>
    c.forgejo.map((f) => ({
      name: f.name,
      url: f.url,
      guestUrl: f.guestUrl,
      token: f.tokenFile,
      timeout: f.requestTimeout,
    }));
  if (!same(forgejo(old), forgejo(next))) {
    log.warn(
      "Forgejo instances and their url, guest_url, token_file and " +
        "request_timeout change on restart only; SIGHUP re-reads the token " +
        "files' contents",
    );
  }
}
