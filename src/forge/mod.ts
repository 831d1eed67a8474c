/** Forges: where jobs come from and runners are registered. */
export {
  type Forge,
  ForgeError,
  forgeOfScope,
  type Forges,
  ForgeSetupError,
  hasForge,
  type JobChanges,
  type PollingForge,
  type RegisteredRunner,
  type RepoRef,
  type RunnerJob,
  type ScopeNeeds,
  type WebhookForge,
  type WebhookResult,
} from "./forge.ts";
export {
  GitHubForge,
  type GitHubForgeOptions,
  parseGitHubWebhook,
  verifySignature,
} from "./github/mod.ts";
export {
  ForgejoForge,
  type ForgejoForgeOptions,
  forgejoStateDir,
} from "./forgejo/mod.ts";
