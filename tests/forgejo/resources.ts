/**
 * The double's state as Forgejo's API objects (`modules/structs`): User,
 * Repository, ActionRunJob, ActionRunner, AccessToken. Only fields the
 * swagger definitions have; the double's answers are checked against
 * them.
 */

import type {
  ForgejoState,
  Job,
  Org,
  Repo,
  Runner,
  Token,
  User,
} from "./state.ts";

type Json = Record<string, unknown>;

/** A user, or an organization shown as a user (a repository's `owner`). */
export function userResource(
  base: string,
  account: User | Org,
): Json {
  const user = "login" in account ? account : undefined;
  const login = user?.login ?? (account as Org).name;
  return {
    id: account.id,
    login,
    login_name: "",
    source_id: 0,
    full_name: user?.fullName ?? "",
    // Forgejo shows a placeholder where it hides an address (orgs too).
    email: user?.email ?? `${login.toLowerCase()}@noreply.forgejo.test`,
    avatar_url: `${base}/avatars/${account.id}`,
    html_url: `${base}/${login}`,
    language: "",
    is_admin: user?.admin ?? false,
    last_login: "0001-01-01T00:00:00Z",
    created: user?.createdAt ?? "2024-01-01T00:00:00Z",
    restricted: false,
    active: true,
    prohibit_login: false,
    location: "",
    pronouns: "",
    website: "",
    description: "",
    visibility: user?.visibility ?? "public",
    followers_count: 0,
    following_count: 0,
    starred_repos_count: 0,
  };
}

export function repositoryResource(
  base: string,
  state: ForgejoState,
  repo: Repo,
): Json {
  const owner = state.user(repo.owner) ?? state.org(repo.owner)!;
  const fullName = `${repo.owner}/${repo.name}`;
  return {
    id: repo.id,
    owner: userResource(base, owner),
    name: repo.name,
    full_name: fullName,
    description: "",
    empty: false,
    private: false,
    fork: false,
    template: false,
    mirror: false,
    archived: false,
    html_url: `${base}/${fullName}`,
    url: `${base}/api/v1/repos/${fullName}`,
    clone_url: `${base}/${fullName}.git`,
    default_branch: "main",
    has_actions: true,
    has_packages: true,
    created_at: "2024-01-01T00:00:00Z",
    updated_at: "2024-01-01T00:00:00Z",
  };
}

/**
 * A job attempt as `GET …/actions/runners/jobs` lists it (§1.2): `needs`
 * is Go's nil slice, so `null`. Forgejo 14 has no `attempt` and `handle`.
 */
export function runJobResource(
  state: ForgejoState,
  job: Job,
  major: number,
): Json {
  const repo = state.repoById(job.repoId)!;
  const item: Json = {
    id: job.id,
    repo_id: repo.id,
    owner_id: repo.ownerId,
    name: job.name,
    needs: null,
    runs_on: [...job.runsOn],
    task_id: job.taskId,
    status: job.status,
  };
  if (major >= 15) {
    Object.assign(item, { attempt: job.attempt, handle: job.handle });
  }
  return item;
}

/** A runner (§1.4); a repository's has owner_id 0, an org's repo_id 0. */
export function runnerResource(
  state: ForgejoState,
  runner: Runner,
  now: number,
): Json {
  return {
    id: runner.id,
    uuid: runner.uuid,
    name: runner.name,
    description: runner.description,
    version: runner.version,
    owner_id: runner.scope.kind === "org" ? runner.scope.orgId : 0,
    repo_id: runner.scope.kind === "repo" ? runner.scope.repoId : 0,
    labels: [...runner.labels],
    status: state.runnerStatus(runner, now),
    ephemeral: runner.ephemeral,
  };
}

/**
 * A token: `sha1` (the secret) only in the answer that creates it; list
 * items carry `repositories`, null unless the token is limited (§3).
 */
export function tokenResource(token: Token, created: boolean): Json {
  const base = {
    id: token.id,
    name: token.name,
    token_last_eight: token.secret.slice(-8),
    scopes: [...token.scopes],
  };
  return created
    ? { ...base, sha1: token.secret }
    : { ...base, repositories: null };
}
