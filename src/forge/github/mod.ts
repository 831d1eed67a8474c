/** The GitHub forge: a GitHub App's API client and its webhooks. */
export { GitHubForge, type GitHubForgeOptions } from "./github_forge.ts";
export { parseGitHubWebhook, verifySignature } from "./webhook.ts";
