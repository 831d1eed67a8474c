/**
 * A small stand-in for Forgejo's generic package registry, so a test can
 * prove a package token works: `PUT /api/packages/{owner}/generic/{name}/
 * {version}/{file}` (not in the swagger; `routers/api/packages/api.go`,
 * research note §3). Forgejo answers plain text here, and 401 (with
 * `WWW-Authenticate`) both for bad credentials and for a caller who may
 * not write: a token without `write:package`, or a user who is not the
 * owner (`reqPackageAccess`). Site admins and an organization's owners
 * may write to its packages.
 */

import { authenticate } from "./auth.ts";
import type { ForgejoState } from "./state.ts";
import { scopesAllow } from "./scopes.ts";

export interface PackageUpload {
  readonly owner: string;
  readonly package: string;
  readonly version: string;
  readonly file: string;
  /** Who uploaded it. */
  readonly user: string;
  readonly bytes: number;
}

const GENERIC =
  /^\/api\/packages\/([^/]+)\/generic\/([^/]+)\/([^/]+)\/([^/]+)$/;

/** An answer before it becomes a Response: plain text, or none. */
export interface PackageReply {
  readonly status: number;
  readonly text?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

const UNAUTHORIZED = {
  "www-authenticate": 'Basic realm="Gitea Package API"',
};

export function handlePackages(
  state: ForgejoState,
  uploads: PackageUpload[],
  request: { method: string; path: string; headers: Headers; body: Uint8Array },
): PackageReply {
  const found = GENERIC.exec(request.path);
  if (!found) return { status: 404, text: "404 page not found\n" };
  if (request.method !== "PUT") {
    return { status: 405, text: "Method Not Allowed\n" };
  }
  const [owner, name, version, file] = found.slice(1).map(decodeURIComponent);
  const auth = authenticate(state, request.headers.get("authorization"));
  if (!auth.ok) {
    return { status: 401, text: "authGroup.Verify\n", headers: UNAUTHORIZED };
  }
  const account = state.user(owner!) ?? state.org(owner!);
  if (!account) return { status: 404, text: "Not Found\n" };
  const caller = auth.caller;
  const scopeOk = !caller?.token ||
    scopesAllow(caller.token.scopes, "write", "package");
  const org = state.org(owner!);
  const mayWrite = caller !== undefined && (
    caller.user.admin ||
    (org
      ? state.ownsOrg(org, caller.user.login)
      : caller.user.login.toLowerCase() === owner!.toLowerCase())
  );
  if (!scopeOk || !mayWrite) {
    return { status: 401, text: "reqPackageAccess\n", headers: UNAUTHORIZED };
  }
  const exists = uploads.some((u) =>
    u.owner.toLowerCase() === owner!.toLowerCase() &&
    u.package.toLowerCase() === name!.toLowerCase() &&
    u.version === version && u.file === file
  );
  if (exists) return { status: 409, text: "package file already exists\n" };
  uploads.push({
    owner: owner!,
    package: name!,
    version: version!,
    file: file!,
    user: caller.user.login,
    bytes: request.body.byteLength,
  });
  return { status: 201 };
}
