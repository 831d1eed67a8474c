/**
 * The webhook secret a `[github]` table names: `webhook_secret` itself, or
 * the contents of `webhook_secret_file`. `serve` reads it at start and again
 * at every config reload, so that a rotated secret needs no restart.
 */

import { Secret } from "../log/mod.ts";
import type { GitHubConfig } from "./types.ts";

/** The secret file cannot be read, or holds no secret; never its contents. */
export class WebhookSecretError extends Error {
  constructor(message: string, readonly path: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "WebhookSecretError";
  }
}

/**
 * The webhook secret. A trailing newline in the secret file (as `echo` and
 * `openssl rand` write it) is not part of the secret.
 *
 * @throws {WebhookSecretError} when the file cannot be read or is empty
 */
export async function readWebhookSecret(
  github: GitHubConfig,
): Promise<Secret | undefined> {
  const source = github.webhookSecret;
  // Scale-set discovery takes no webhooks, and may have no secret.
  if (source === undefined) return undefined;
  if (source.kind === "inline") return source.value;
  return await readSecretFile(source.path, "webhook secret file");
}

/**
 * A secret kept in a file of its own (a webhook secret, a personal access
 * token), without the trailing newline that `echo` writes.
 *
 * @throws {WebhookSecretError} when the file cannot be read or is empty
 */
export async function readSecretFile(
  path: string,
  what: string,
): Promise<Secret> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new WebhookSecretError(
      `Cannot read the ${what} ${path}: ${(error as Error).message}`,
      path,
      { cause: error },
    );
  }
  const secret = text.replace(/\r?\n$/, "");
  if (secret.trim() === "") {
    throw new WebhookSecretError(`The ${what} ${path} is empty`, path);
  }
  return new Secret(secret);
}
