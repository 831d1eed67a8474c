/**
 * Forgejo's access token scopes (`models/auth/access_token_scope.go`,
 * research note §1.7): `all`, `public-only`, and `read:`/`write:` per
 * category; write implies read, `all` implies everything. A request needs
 * `read:<category>` for GET and `write:<category>` for other methods
 * (`tokenRequiresScopes` in `routers/api/v1/api.go`).
 */

export const CATEGORIES = [
  "activitypub",
  "admin",
  "misc",
  "notification",
  "organization",
  "package",
  "issue",
  "repository",
  "user",
] as const;

export type Category = typeof CATEGORIES[number];
export type Level = "read" | "write";

/**
 * Scopes as Forgejo stores them: `sudo` and empty names skipped (the
 * parser does that silently), `read:X` dropped beside `write:X`, `all`
 * alone, in the order of Forgejo's scope list **[inference: the order is
 * from memory of `allAccessTokenScopes`; nothing here depends on it]**.
 *
 * @throws {RangeError} naming the first scope Forgejo does not know
 */
export function normalizeScopes(scopes: readonly string[]): string[] {
  const given = new Set<string>();
  for (const raw of scopes.flatMap((s) => s.split(","))) {
    const scope = raw.trim();
    if (scope === "" || scope === "sudo") continue;
    if (!isKnown(scope)) {
      throw new RangeError(`invalid access token scope: ${scope}`);
    }
    given.add(scope);
  }
  const out: string[] = [];
  if (given.has("public-only")) out.push("public-only");
  if (given.has("all")) return ["all", ...out];
  for (const category of CATEGORIES) {
    if (given.has(`write:${category}`)) out.push(`write:${category}`);
    else if (given.has(`read:${category}`)) out.push(`read:${category}`);
  }
  return out;
}

function isKnown(scope: string): boolean {
  if (scope === "all" || scope === "public-only") return true;
  const [level, category] = scope.split(":");
  return (level === "read" || level === "write") &&
    (CATEGORIES as readonly string[]).includes(category ?? "");
}

/** Whether normalized `scopes` grant `level` on `category`. */
export function scopesAllow(
  scopes: readonly string[],
  level: Level,
  category: Category,
): boolean {
  if (scopes.includes("all")) return true;
  if (scopes.includes(`write:${category}`)) return true;
  return level === "read" && scopes.includes(`read:${category}`);
}

/** The level a method needs: GET (and HEAD) read, everything else write. */
export function levelOf(method: string): Level {
  return method === "GET" || method === "HEAD" ? "read" : "write";
}

/**
 * The category of an operation, by the first segment of its path as
 * Forgejo groups its routes; undefined where no scope is needed
 * (`/version`, `/settings/…`).
 */
export function categoryOf(template: string): Category | undefined {
  const first = template.split("/")[1] ?? "";
  switch (first) {
    case "repos":
    case "repositories":
      return "repository";
    case "orgs":
      return "organization";
    case "admin":
      return "admin";
    case "users":
    case "user":
      return "user";
    case "notifications":
      return "notification";
    case "packages":
      return "package";
    case "activitypub":
      return "activitypub";
    default:
      return undefined;
  }
}
