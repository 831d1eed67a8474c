/**
 * The double's endpoints for the instance, users and tokens (research note
 * §3): the version, the caller, repositories by id, users made and edited
 * by a site admin, and access tokens, which only a password login may
 * create or delete (`reqBasicOrRevProxyAuth`: 401 "auth method not
 * allowed" for any token, even an admin's with Sudo).
 */

import {
  apiError,
  bindBody,
  type Call,
  isReply,
  notFound,
  paginate,
  type Reply,
  requireSignedIn,
} from "./reply.ts";
import {
  repositoryResource,
  tokenResource,
  userResource,
} from "./resources.ts";
import type { User } from "./state.ts";

/** Forgejo's `MIN_PASSWORD_LENGTH` default **[inference: from memory]**. */
const MIN_PASSWORD_LENGTH = 8;

export function getVersion(call: Call): Reply {
  return { status: 200, body: { version: call.version } };
}

export function userGetCurrent(call: Call): Reply {
  const refused = requireSignedIn(call);
  if (refused) return refused;
  return { status: 200, body: userResource(call.base, call.caller!.user) };
}

/** `GET /users/{username}`: every user is public in the double. */
export function userGet(call: Call): Reply {
  const user = call.state.user(call.op.pathParams.username!);
  if (!user) return notFound(call.base);
  return { status: 200, body: userResource(call.base, user) };
}

/** Every repository is public in the double: no sign-in needed. */
export function repoGetByID(call: Call): Reply {
  const id = Number(call.op.pathParams.id);
  const repo = Number.isInteger(id) ? call.state.repoById(id) : undefined;
  if (!repo) return notFound(call.base);
  return { status: 200, body: repositoryResource(call.base, call.state, repo) };
}

/** `/admin` routes: `reqToken()`, then `reqSiteAdmin()`. */
function requireSiteAdmin(call: Call): Reply | undefined {
  const refused = requireSignedIn(call);
  if (refused) return refused;
  if (!call.caller!.user.admin) {
    return apiError(call.base, 403, "user should be the site admin");
  }
  return undefined;
}

export function adminSearchUsers(call: Call): Reply {
  const refused = requireSiteAdmin(call);
  if (refused) return refused;
  const { page, headers } = paginate(call, call.state.users());
  return {
    status: 200,
    body: page.map((u) => userResource(call.base, u)),
    headers,
  };
}

/** 201; `must_change_password` is true unless the body says otherwise. */
export function adminCreateUser(call: Call): Reply {
  const refused = requireSiteAdmin(call);
  if (refused) return refused;
  const body = bindBody(call, ["username", "email"]);
  if (isReply(body)) return body;
  const login = String(body.username);
  const email = String(body.email);
  const password = typeof body.password === "string" ? body.password : "";
  if (call.state.user(login) || call.state.org(login)) {
    return apiError(call.base, 422, `user already exists [name: ${login}]`);
  }
  if (call.state.users().some((u) => u.email === email)) {
    return apiError(call.base, 422, `e-mail already in use [email: ${email}]`);
  }
  const short = passwordProblem(call, password);
  if (short) return short;
  const user = call.state.addUser(login, {
    email,
    password,
    mustChangePassword: typeof body.must_change_password === "boolean"
      ? body.must_change_password
      : true,
    createdBy: call.caller!.user.login,
    ...(typeof body.full_name === "string" ? { fullName: body.full_name } : {}),
    ...(typeof body.visibility === "string"
      ? { visibility: body.visibility }
      : {}),
  });
  return { status: 201, body: userResource(call.base, user) };
}

/** Password, must_change_password and admin, as far as the body says. */
export function adminEditUser(call: Call): Reply {
  const refused = requireSiteAdmin(call);
  if (refused) return refused;
  const user = call.state.user(call.op.pathParams.username!);
  if (!user) return notFound(call.base);
  const body = bindBody(call, []);
  if (isReply(body)) return body;
  if (typeof body.password === "string" && body.password !== "") {
    const short = passwordProblem(call, body.password);
    if (short) return short;
    user.password = body.password;
  }
  if (typeof body.must_change_password === "boolean") {
    user.mustChangePassword = body.must_change_password;
  }
  if (typeof body.admin === "boolean") user.admin = body.admin;
  return { status: 200, body: userResource(call.base, user) };
}

function passwordProblem(call: Call, password: string): Reply | undefined {
  return password.length < MIN_PASSWORD_LENGTH
    ? apiError(call.base, 400, "password is too short")
    : undefined;
}

/**
 * The `{username}` of `/users/{username}/tokens…`, then `reqSelfOrAdmin()`:
 * 404 for no such user, 403 for someone else's tokens.
 */
function tokenOwner(call: Call): User | Reply {
  const user = call.state.user(call.op.pathParams.username!);
  if (!user) return notFound(call.base);
  const refused = requireSignedIn(call);
  if (refused) return refused;
  const doer = call.caller!.user;
  if (!doer.admin && doer.id !== user.id) {
    return apiError(
      call.base,
      403,
      "doer should be the site admin or be same as the contextUser",
    );
  }
  return user;
}

/** `reqBasicOrRevProxyAuth()`: a password login, nothing else. */
function requirePassword(call: Call): Reply | undefined {
  return call.caller?.kind === "basic-password"
    ? undefined
    : apiError(call.base, 401, "auth method not allowed");
}

/** Self or admin; any auth method (an admin token with read:user works). */
export function userGetTokens(call: Call): Reply {
  const user = tokenOwner(call);
  if (isReply(user)) return user;
  const { page, headers } = paginate(call, call.state.tokensOf(user.login));
  return {
    status: 200,
    body: page.map((t) => tokenResource(t, false)),
    headers,
  };
}

export function userCreateToken(call: Call): Reply {
  const user = tokenOwner(call);
  if (isReply(user)) return user;
  // bind() runs before the auth method check on this route.
  const body = bindBody(call, ["name"]);
  if (isReply(body)) return body;
  const refused = requirePassword(call);
  if (refused) return refused;
  const name = String(body.name);
  const scopes = Array.isArray(body.scopes) ? body.scopes.map(String) : [];
  if (call.state.tokensOf(user.login).some((t) => t.name === name)) {
    return apiError(call.base, 400, "access token name has been used already");
  }
  try {
    const token = call.state.addToken(user.login, scopes, name);
    return { status: 201, body: tokenResource(token, true) };
  } catch (error) {
    if (error instanceof RangeError) {
      return apiError(call.base, 400, error.message);
    }
    throw error;
  }
}

/** `{token}` is the token's id, or its name when not a number. */
export function userDeleteAccessToken(call: Call): Reply {
  const user = tokenOwner(call);
  if (isReply(user)) return user;
  const refused = requirePassword(call);
  if (refused) return refused;
  const key = call.op.pathParams.token!;
  const tokens = call.state.tokensOf(user.login);
  const token = /^\d+$/.test(key) && Number(key) > 0
    ? tokens.find((t) => t.id === Number(key))
    : tokens.find((t) => t.name === key);
  if (!token) return notFound(call.base);
  call.state.deleteToken(token.id);
  return { status: 204 };
}
