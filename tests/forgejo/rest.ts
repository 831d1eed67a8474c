/**
 * The double's `/api/v1` in the order Forgejo's middlewares run
 * (`routers/api/shared/middleware.go`, `routers/api/v1/api.go`):
 * authentication (401), a user who must change its password (403, every
 * request), Sudo (site admins only), the token's scope for the route's
 * category (403), then the endpoint with its own checks. Routing is the
 * swagger description's: an operationId picks the handler.
 */

import * as runners from "./api_runners.ts";
import * as users from "./api_users.ts";
import { authenticate } from "./auth.ts";
import { apiError, type Call, notFound, type Reply } from "./reply.ts";
import { categoryOf, levelOf, scopesAllow } from "./scopes.ts";

type Handler = (call: Call) => Reply;

const HANDLERS: Readonly<Record<string, Handler>> = {
  getVersion: users.getVersion,
  userGetCurrent: users.userGetCurrent,
  userGet: users.userGet,
  repoGetByID: users.repoGetByID,
  adminSearchUsers: users.adminSearchUsers,
  adminCreateUser: users.adminCreateUser,
  adminEditUser: users.adminEditUser,
  userGetTokens: users.userGetTokens,
  userCreateToken: users.userCreateToken,
  userDeleteAccessToken: users.userDeleteAccessToken,
  repoSearchRunJobs: runners.searchRunJobs,
  orgSearchRunJobs: runners.searchRunJobs,
  getRepoRunners: runners.listRunners,
  getOrgRunners: runners.listRunners,
  registerRepoRunner: runners.registerRunner,
  registerOrgRunner: runners.registerRunner,
  getRepoRunner: runners.getRunner,
  getOrgRunner: runners.getRunner,
  deleteRepoRunner: runners.deleteRunner,
  deleteOrgRunner: runners.deleteRunner,
};

/** Routes Forgejo 14 does not have (research note §1.1): 404 there. */
const SINCE_15 = new Set([
  "getRepoRunners",
  "getOrgRunners",
  "registerRepoRunner",
  "registerOrgRunner",
  "getRepoRunner",
  "getOrgRunner",
  "deleteRepoRunner",
  "deleteOrgRunner",
]);

/** Whether the double answers an operation (else 501). */
export function implemented(operationId: string): boolean {
  return operationId in HANDLERS;
}

/** The answer to one documented operation; `caller` is filled in here. */
export function handleApi(call: Omit<Call, "caller">): Reply {
  const { op, base, state } = call;
  if (call.major < 15 && SINCE_15.has(op.operationId)) return notFound(base);
  const auth = authenticate(state, call.headers.get("authorization"));
  if (!auth.ok) return apiError(base, 401, auth.message);
  let caller = auth.caller;
  if (caller?.user.mustChangePassword) {
    return {
      status: 403,
      body: {
        message: "You must change your password. Change it at: " +
          `${base}/user/change_password`,
      },
    };
  }
  const sudo = call.headers.get("sudo") ?? call.query.get("sudo");
  if (sudo) {
    if (!caller?.user.admin) {
      return {
        status: 403,
        body: { message: "Only administrators allowed to sudo." },
      };
    }
    const target = state.user(sudo);
    if (!target) return notFound(base);
    caller = { ...caller, user: target };
  }
  const category = categoryOf(op.template);
  if (caller?.token && category) {
    const level = levelOf(call.method);
    if (!scopesAllow(caller.token.scopes, level, category)) {
      return apiError(
        base,
        403,
        `token does not have at least one of required scope(s): [${level}:${category}]`,
      );
    }
  }
  const handler = HANDLERS[op.operationId];
  if (!handler) {
    return apiError(
      base,
      501,
      `the Forgejo double does not implement ${op.operationId}`,
    );
  }
  return handler({ ...call, caller });
}
