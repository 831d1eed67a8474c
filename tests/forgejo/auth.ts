/**
 * Who a request is, as Forgejo's API authentication decides it
 * (`services/auth/method/basic.go`, the OAuth2 method, research note §3):
 * - `Authorization: token X` or `Bearer X`: token auth;
 * - `Basic user:password` where the password (or, with an empty password
 *   or `x-oauth-basic`, the user name) is an access token: token auth,
 *   as the token's user whatever the name says;
 * - `Basic user:password` otherwise: password auth, not limited by scopes.
 * Unknown credentials are a 401 (Forgejo answers with the error of its
 * lookup; the wording here follows its `ErrUserNotExist`).
 */

import type { ForgejoState, Token, User } from "./state.ts";

export type AuthKind = "token" | "basic-password" | "basic-token" | "none";

/** An authenticated caller. */
export interface Caller {
  /** Who acts: the token's or password's user, or the Sudo target. */
  readonly user: User;
  readonly kind: Exclude<AuthKind, "none">;
  /** The token, for token auth: its scopes limit what the caller may do. */
  readonly token: Token | undefined;
}

export type Authentication =
  | { readonly ok: true; readonly caller: Caller | undefined }
  | { readonly ok: false; readonly kind: AuthKind; readonly message: string };

/** The kind of credentials a header carries, before they are checked. */
export function authKindOf(
  state: ForgejoState,
  authorization: string | null,
): AuthKind {
  if (!authorization) return "none";
  const [scheme = "", value = ""] = authorization.split(/ (.*)/s);
  if (/^(token|bearer)$/i.test(scheme)) return "token";
  if (!/^basic$/i.test(scheme)) return "none";
  const { secret } = basicParts(value);
  return state.tokenBySecret(secret) ? "basic-token" : "basic-password";
}

export function authenticate(
  state: ForgejoState,
  authorization: string | null,
): Authentication {
  const kind = authKindOf(state, authorization);
  if (kind === "none") return { ok: true, caller: undefined };
  const [, value = ""] = authorization!.split(/ (.*)/s);
  if (kind === "token") {
    const token = state.tokenBySecret(value.trim());
    const user = token && state.user(token.login);
    if (!token || !user) return refused(kind, "");
    return { ok: true, caller: { user, kind, token } };
  }
  const { name, password, secret } = basicParts(value);
  if (kind === "basic-token") {
    const token = state.tokenBySecret(secret)!;
    const user = state.user(token.login);
    if (!user) return refused(kind, name);
    return { ok: true, caller: { user, kind, token } };
  }
  const user = state.user(name);
  if (!user || user.password !== password) return refused(kind, name);
  return { ok: true, caller: { user, kind, token: undefined } };
}

function refused(kind: AuthKind, name: string): Authentication {
  return {
    ok: false,
    kind,
    message: `user does not exist [uid: 0, name: ${name}]`,
  };
}

/** A Basic value's user, password, and what Forgejo tries as a token. */
function basicParts(
  value: string,
): { name: string; password: string; secret: string } {
  let decoded = "";
  try {
    decoded = new TextDecoder().decode(
      Uint8Array.from(atob(value.trim()), (c) => c.charCodeAt(0)),
    );
  } catch {
    decoded = "";
  }
  const colon = decoded.indexOf(":");
  const name = colon < 0 ? decoded : decoded.slice(0, colon);
  const password = colon < 0 ? "" : decoded.slice(colon + 1);
  const usernameIsToken = password === "" || password === "x-oauth-basic";
  return { name, password, secret: usernameIsToken ? name : password };
}
