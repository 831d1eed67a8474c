/**
 * The one key of a machine type: its forge, its scope (a repository, an
 * organization or an enterprise, product.md §11) and its name. Every scope
 * is written in three segments, `owner/repo/machine`, `orgs/ORG/machine` or
 * `enterprises/SLUG/machine`, the words of GitHub's own URLs, so run
 * directories, machine images, `base_machine`, status and metrics all
 * derive from it through the functions here and keep one depth on disk.
 * GitHub reserves `orgs` and `enterprises` as account names, so the three
 * forms never meet; the config refuses them as repository owners anyway.
 * A Forgejo instance's scopes carry its config name before the first
 * segment, `codeberg:owner/repo/machine` (product.md §12): account names
 * hold no colon on either forge, so the forms never meet either.
 */

export type Scope =
  | {
    readonly kind: "repository";
    readonly owner: string;
    readonly repo: string;
    /** The `[forgejo.NAME]` it lives on; GitHub when undefined. */
    readonly forge?: string;
  }
  | {
    readonly kind: "organization";
    readonly org: string;
    readonly forge?: string;
  }
  | { readonly kind: "enterprise"; readonly enterprise: string };

export type ScopeKind = Scope["kind"];

/** One machine type: where its runners belong, and its name. */
export interface Triplet {
  readonly scope: Scope;
  readonly machine: string;
}

/** The first word of a non-repository scope's key, per scope kind. */
export const SCOPE_WORDS = {
  organization: "orgs",
  enterprise: "enterprises",
} as const;

/** The Forgejo instance a scope lives on; undefined for GitHub. */
export function forgeOf(scope: Scope): string | undefined {
  return scope.kind === "enterprise" ? undefined : scope.forge;
}

/**
 * The two segments that name a scope: `owner/repo`, `orgs/ORG`, …, the
 * first prefixed with `NAME:` on a Forgejo instance.
 */
export function scopeSegments(scope: Scope): [string, string] {
  const [first, second] = githubSegments(scope);
  const forge = forgeOf(scope);
  return [forge === undefined ? first : `${forge}:${first}`, second];
}

/** The segments without the forge: the words of the forge's own URLs. */
function githubSegments(scope: Scope): [string, string] {
  switch (scope.kind) {
    case "repository":
      return [scope.owner, scope.repo];
    case "organization":
      return [SCOPE_WORDS.organization, scope.org];
    case "enterprise":
      return [SCOPE_WORDS.enterprise, scope.enterprise];
  }
}

/** `owner/repo`, `orgs/ORG` or `enterprises/SLUG`. */
export function scopeName(scope: Scope): string {
  return scopeSegments(scope).join("/");
}

/** The scope two key segments name. */
export function scopeOf(first: string, second: string): Scope {
  const colon = first.indexOf(":");
  if (colon > 0) {
    const forge = first.slice(0, colon);
    const rest = first.slice(colon + 1);
    return rest.toLowerCase() === SCOPE_WORDS.organization
      ? { kind: "organization", org: second, forge }
      : { kind: "repository", owner: rest, repo: second, forge };
  }
  if (first.toLowerCase() === SCOPE_WORDS.organization) {
    return { kind: "organization", org: second };
  }
  if (first.toLowerCase() === SCOPE_WORDS.enterprise) {
    return { kind: "enterprise", enterprise: second };
  }
  return { kind: "repository", owner: first, repo: second };
}

/** `owner/repo/machine`, `orgs/ORG/machine` or `enterprises/SLUG/machine`. */
export function tripletName(triplet: Triplet): string {
  return `${scopeName(triplet.scope)}/${triplet.machine}`;
}

/** A key from its three-segment text; undefined when it is not three. */
export function parseTriplet(text: string): Triplet | undefined {
  const parts = text.split("/");
  if (parts.length !== 3 || parts.some((part) => part === "")) {
    return undefined;
  }
  const [first, second, machine] = parts as [string, string, string];
  return { scope: scopeOf(first, second), machine };
}

/** A scope as one string that compares case-insensitively, as GitHub does. */
export function scopeKey(scope: Scope): string {
  return `${scope.kind}:${scopeName(scope)}`.toLowerCase();
}

/**
 * What a scope is called in sentences: "repository acme/app",
 * "organization acme on codeberg", …
 */
export function describeScope(scope: Scope): string {
  const forge = forgeOf(scope);
  const on = forge === undefined ? "" : ` on ${forge}`;
  switch (scope.kind) {
    case "repository":
      return `repository ${scope.owner}/${scope.repo}${on}`;
    case "organization":
      return `organization ${scope.org}${on}`;
    case "enterprise":
      return `enterprise ${scope.enterprise}`;
  }
}
