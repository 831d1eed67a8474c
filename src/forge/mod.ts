/** Forges: where jobs come from and runners are registered. */
export {
  type Forge,
  ForgeError,
  ForgeSetupError,
  type RegisteredRunner,
  type RepoRef,
  type ScopeNeeds,
  type WebhookResult,
} from "./forge.ts";
export {
  GitHubForge,
  type GitHubForgeOptions,
  parseGitHubWebhook,
  verifySignature,
} from "./github/mod.ts";
