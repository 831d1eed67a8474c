import assert from "node:assert/strict";
import { categoryOf, levelOf, normalizeScopes, scopesAllow } from "./scopes.ts";

Deno.test("normalizeScopes() skips sudo, keeps write over read, and refuses unknown scopes", () => {
  assert.deepEqual(
    normalizeScopes(["read:user", "sudo", "write:user", "read:repository", ""]),
    ["read:repository", "write:user"],
  );
  assert.deepEqual(normalizeScopes(["write:package", "all"]), ["all"]);
  assert.deepEqual(normalizeScopes(["read:admin,write:admin"]), [
    "write:admin",
  ]);
  assert.deepEqual(normalizeScopes([]), []);
  assert.throws(
    () => normalizeScopes(["write:admin_users"]),
    (error: unknown) =>
      error instanceof RangeError &&
      error.message === "invalid access token scope: write:admin_users",
  );
});

Deno.test("scopesAllow() lets write imply read and all imply everything", () => {
  assert.ok(scopesAllow(["write:repository"], "read", "repository"));
  assert.ok(scopesAllow(["read:repository"], "read", "repository"));
  assert.ok(!scopesAllow(["read:repository"], "write", "repository"));
  assert.ok(!scopesAllow(["write:repository"], "read", "organization"));
  assert.ok(scopesAllow(["all"], "write", "admin"));
  assert.ok(!scopesAllow(["public-only"], "read", "user"));
});

Deno.test("categoryOf() and levelOf() map routes as Forgejo groups them", () => {
  assert.equal(
    categoryOf("/repos/{owner}/{repo}/actions/runners"),
    "repository",
  );
  assert.equal(categoryOf("/repositories/{id}"), "repository");
  assert.equal(categoryOf("/orgs/{org}/actions/runners/jobs"), "organization");
  assert.equal(categoryOf("/admin/users"), "admin");
  assert.equal(categoryOf("/users/{username}/tokens"), "user");
  assert.equal(categoryOf("/user"), "user");
  assert.equal(categoryOf("/version"), undefined);
  assert.equal(levelOf("GET"), "read");
  assert.equal(levelOf("DELETE"), "write");
});
