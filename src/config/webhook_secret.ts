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
): Promise<Secret> {
  const source = github.webhookSecret;
  if (source.kind === "inline") return source.value;
  let text: string;
  try {
    text = await Deno.readTextFile(source.path);
  } catch (error) {
    throw new WebhookSecretError(
      `Cannot read the webhook secret file ${source.path}: ${
        (error as Error).message
      }`,
      source.path,
      { cause: error },
    );
  }
  const secret = text.replace(/\r?\n$/, "");
  if (secret === "") {
    throw new WebhookSecretError(
      `The webhook secret file ${source.path} is empty`,
      source.path,
    );
  }
  return new Secret(secret);
}
