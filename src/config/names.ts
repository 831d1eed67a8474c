/**
 * Names that come from the config or from GitHub end up in file paths
 * (`runs/<owner>/<repo>/<machine>/<runner>/`) and in qemu arguments, so they
 * are checked against GitHub's own naming rules before anything uses them.
 * Each check returns undefined for a good name, or what is wrong with it.
 */

import { createHash } from "node:crypto";
import type { Triplet } from "./machine_key.ts";

/** GitHub user and organization names: 1–39 letters, digits, single hyphens. */
const OWNER_RE = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
/**
 * Forgejo user and organization names (its IsValidUsername): 1–40 letters,
 * digits, "-", "_" or ".", starting and ending with a letter or digit, no
 * two of "-_." in a row.
 */
const FORGEJO_OWNER_RE =
  /^[A-Za-z0-9](?:[A-Za-z0-9]|[-_.](?=[A-Za-z0-9])){0,39}$/;
/** GitHub repository names: 1–100 of letters, digits, `.`, `_`, `-`. */
const REPO_RE = /^[A-Za-z0-9._-]{1,100}$/;
/**
 * Machine names are runner labels and part of runner names; we keep them to
 * characters that are safe in a path and in a qemu option value.
 */
const MACHINE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkOwnerName(name: string): string | undefined {
  return OWNER_RE.test(name) ? undefined : `"${name}" is not a valid GitHub ` +
    "owner name (1 to 39 letters, digits or single hyphens, not starting " +
    "or ending with a hyphen)";
}

export function checkForgejoOwnerName(name: string): string | undefined {
  return FORGEJO_OWNER_RE.test(name) ? undefined : `"${name}" is not a ` +
    'valid Forgejo owner name (1 to 40 letters, digits, "-", "_" or ".", ' +
    "starting and ending with a letter or digit)";
}

export function checkRepoName(name: string): string | undefined {
  if (REPO_RE.test(name) && name !== "." && name !== "..") return undefined;
  return `"${name}" is not a valid GitHub repository name (1 to 100 ` +
    'letters, digits, ".", "_" or "-", and not "." or "..")';
}

export function checkMachineName(name: string): string | undefined {
  return MACHINE_RE.test(name) ? undefined : `"${name}" is not a valid ` +
    'machine name (1 to 64 letters, digits, ".", "_" or "-", starting with ' +
    "a letter or digit)";
}

/**
 * Every name in a machine key, checked as the scope's kind asks: what goes
 * into paths (run directories, machine images) passes here first.
 */
export function checkTripletNames(triplet: Triplet): string | undefined {
  const { scope } = triplet;
  const checkOwner = scope.kind !== "enterprise" && scope.forge !== undefined
    ? checkForgejoOwnerName
    : checkOwnerName;
  const scopeProblem = scope.kind === "repository"
    ? checkOwner(scope.owner) ?? checkRepoName(scope.repo)
    : checkOwner(scope.kind === "organization" ? scope.org : scope.enterprise);
  return scopeProblem ?? checkMachineName(triplet.machine);
}

/** Forgejo's longest user name. */
const MAX_FORGEJO_LOGIN = 40;

/**
 * The CI user of a Forgejo repository with `package_token` (product.md
 * §12): `<owner>-<repo>-ci`, lower case, with the characters Forgejo
 * refuses in user names (runs of "-_.", and "." or "_" next to the
 * dashes) folded to one "-". A name over 40 characters keeps its start and
 * gets 8 hex digits of a hash of the whole, so two long repositories never
 * share a user.
 */
export function ciUserName(owner: string, repo: string): string {
  const whole = `${owner}-${repo}-ci`.toLowerCase();
  const login = whole.replace(/[-_.]*-[-_.]*/g, "-")
    .replace(/[-_.]{2,}/g, "-");
  if (login.length <= MAX_FORGEJO_LOGIN) return login;
  const hash = createHash("sha256").update(whole).digest("hex").slice(0, 8);
  const head = login.slice(0, MAX_FORGEJO_LOGIN - hash.length - 4)
    .replace(/[-_.]+$/, "");
  return `${head}-${hash}-ci`;
}
