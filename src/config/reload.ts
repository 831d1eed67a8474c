/**
 * Keeps a running daemon's config in step with its file. A broken new file
 * never replaces a working config: its problems are logged (once per
 * version of the file) and the old config stays in force until the file is
 * fixed. Machines hold the config they were created with, so a reload only
 * affects what comes after it.
 *
 * The webhook secret is part of what a reload applies: every reload reads
 * it again, the secret file's contents too (they change without the config
 * changing: a rotated secret). A secret file that cannot be read or is empty
 * makes the reload a broken one, like a config with problems.
 */

import { getLogger, type Logger } from "@logtape/logtape";
import { basename, dirname, resolve } from "node:path";
import { type LoadedConfig, parseConfig } from "./load.ts";
import { ConfigError } from "./problem.ts";
import type { Config } from "./types.ts";
import type { Secret } from "../log/mod.ts";
import { readWebhookSecret, WebhookSecretError } from "./webhook_secret.ts";

export interface ConfigReloaderOptions {
  /** Called with every new valid config. */
  readonly onChange?: (config: Config) => void;
  /** The webhook secret in force (read at start with readWebhookSecret()). */
  readonly webhookSecret?: Secret | undefined;
  /** Called with a new webhook secret, before onChange when both changed. */
  readonly onWebhookSecret?: (secret: Secret) => void;
  /** Milliseconds of quiet after a file event before re-reading; 200 by default. */
  readonly debounce?: number;
  /** Folder a relative file name is taken from; the working directory if unset. */
  readonly cwd?: string;
  readonly logger?: Logger;
}

export type ReloadOutcome = "changed" | "unchanged" | "rejected";

export class ConfigReloader {
  readonly #file: string;
  readonly #path: string;
  readonly #options: ConfigReloaderOptions;
  readonly #log: Logger;
  #config: Config;
  #webhookSecret: Secret | undefined;
  /** The text behind #config, to tell a real change from a touch. */
  #acceptedText: string;
  /** The text last rejected, so that its problems are logged only once. */
  #rejectedText: string | undefined;

  /**
   * @param file the config file, as the user named it
   * @param initial the config already read from it (readConfig())
   */
  constructor(
    file: string,
    initial: LoadedConfig,
    options: ConfigReloaderOptions = {},
  ) {
    this.#file = file;
    this.#path = resolve(options.cwd ?? Deno.cwd(), file);
    this.#options = options;
    this.#log = options.logger ?? getLogger(["forrest", "config"]);
    this.#config = initial.config;
    this.#webhookSecret = options.webhookSecret;
    this.#acceptedText = initial.text;
  }

  /** The config in force. */
  get current(): Config {
    return this.#config;
  }

  /** The webhook secret in force, if the config has a [github] table. */
  get webhookSecret(): Secret | undefined {
    return this.#webhookSecret;
  }

  /** Re-reads the file, and the webhook secret, now. */
  async reload(): Promise<ReloadOutcome> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#path);
    } catch (error) {
      return this.#reject(`unreadable:${error}`, () =>
        this.#log.error(
          "Cannot read config file {file}: {error}; keeping the config in force",
          { file: this.#file, error: String(error) },
        ));
    }
    let config = this.#config;
    if (text !== this.#acceptedText) {
      try {
        config = parseConfig(text, {
          file: this.#file,
          ...(this.#options.cwd === undefined
            ? {}
            : { cwd: this.#options.cwd }),
        });
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        return this.#reject(text, () =>
          this.#log.error(
            "Config file {file} has {count} problem(s); keeping the config in force:\n{problems}",
            {
              file: this.#file,
              count: error.problems.length,
              problems: error.lines.join("\n"),
            },
          ));
      }
    }
    let secret = this.#webhookSecret;
    if (config.github !== undefined) {
      try {
        secret = await readWebhookSecret(config.github);
      } catch (error) {
        if (!(error instanceof WebhookSecretError)) throw error;
        // The message names the file, never what it holds.
        return this.#reject(`${text}\0${error.message}`, () =>
          this.#log.error(
            "{error}; keeping the config and webhook secret in force",
            { error: error.message },
          ));
      }
    }
    this.#rejectedText = undefined;
    const configChanged = config !== this.#config;
    // Compared by value: a touched secret file is no change.
    const newSecret = secret?.reveal() !== this.#webhookSecret?.reveal()
      ? secret
      : undefined;
    if (!configChanged && newSecret === undefined) return "unchanged";
    this.#config = config;
    this.#acceptedText = text;
    this.#webhookSecret = secret;
    if (configChanged) {
      this.#log.info("Reloaded config file {file}", { file: this.#file });
    }
    if (newSecret !== undefined) {
      this.#log.info(
        "Reloaded the webhook secret: deliveries signed with the old one are refused",
      );
      this.#options.onWebhookSecret?.(newSecret);
    }
    if (configChanged) this.#options.onChange?.(config);
    return "changed";
  }

  /**
   * Reloads whenever the file changes, until `signal` aborts. The folder is
   * watched rather than the file, because editors and config management
   * replace files by renaming a new one over them.
   */
  async watch(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const name = basename(this.#path);
    const watcher = Deno.watchFs(dirname(this.#path), { recursive: false });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let pending = Promise.resolve<unknown>(undefined);
    const stop = () => {
      clearTimeout(timer);
      watcher.close();
    };
    signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const event of watcher) {
        if (!event.paths.some((path) => basename(path) === name)) continue;
        clearTimeout(timer);
        timer = setTimeout(() => {
          pending = pending.then(() => this.reload());
        }, this.#options.debounce ?? 200);
      }
    } finally {
      signal.removeEventListener("abort", stop);
      clearTimeout(timer);
      await pending;
    }
  }

  #reject(text: string, log: () => void): ReloadOutcome {
    if (text !== this.#rejectedText) log();
    this.#rejectedText = text;
    return "rejected";
  }
}
