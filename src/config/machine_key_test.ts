import assert from "node:assert/strict";
import {
  describeScope,
  parseTriplet,
  scopeKey,
  scopeSegments,
  type Triplet,
  tripletName,
} from "./machine_key.ts";

const KEYS: [string, Triplet][] = [
  ["acme/app/build", {
    scope: { kind: "repository", owner: "acme", repo: "app" },
    machine: "build",
  }],
  ["orgs/acme/build", {
    scope: { kind: "organization", org: "acme" },
    machine: "build",
  }],
  ["enterprises/megacorp/hil", {
    scope: { kind: "enterprise", enterprise: "megacorp" },
    machine: "hil",
  }],
];

Deno.test("machine keys: every scope is three segments, there and back", () => {
  for (const [text, triplet] of KEYS) {
    assert.deepEqual(parseTriplet(text), triplet);
    assert.equal(tripletName(triplet), text);
    // Run directories and machine images sit at one depth for all scopes.
    assert.deepEqual(
      [...scopeSegments(triplet.scope), triplet.machine].join("/"),
      text,
    );
  }
  assert.deepEqual(parseTriplet("ORGS/Acme/build")?.scope, {
    kind: "organization",
    org: "Acme",
  });
  for (const bad of ["acme/build", "a/b/c/d", "a//c", ""]) {
    assert.equal(parseTriplet(bad), undefined, bad);
  }
});

Deno.test("machine keys: scopes compare ignoring case, and kinds never meet", () => {
  assert.equal(
    scopeKey({ kind: "organization", org: "ACME" }),
    scopeKey({ kind: "organization", org: "acme" }),
  );
  assert.notEqual(
    scopeKey({ kind: "organization", org: "acme" }),
    scopeKey({ kind: "enterprise", enterprise: "acme" }),
  );
});

Deno.test("machine keys: a Forgejo instance's scopes carry its name, there and back", () => {
  const keys: [string, Triplet][] = [
    ["codeberg:alice/app/build", {
      scope: {
        kind: "repository",
        owner: "alice",
        repo: "app",
        forge: "codeberg",
      },
      machine: "build",
    }],
    ["codeberg:orgs/team/build", {
      scope: { kind: "organization", org: "team", forge: "codeberg" },
      machine: "build",
    }],
  ];
  for (const [text, triplet] of keys) {
    assert.deepEqual(parseTriplet(text), triplet);
    assert.equal(tripletName(triplet), text);
  }
  // The same names on GitHub are another machine type.
  assert.notEqual(
    scopeKey(keys[0]![1].scope),
    scopeKey({ kind: "repository", owner: "alice", repo: "app" }),
  );
  assert.equal(
    describeScope(keys[1]![1].scope),
    "organization team on codeberg",
  );
});
