import assert from "node:assert/strict";
import { chooseImage, type ImageFacts } from "./choose.ts";
import type { UseBase } from "../config/mod.ts";

const OWN = { path: "/srv/machines/acme/app/build.img", mtime: 2_000 };
const OLDER_BASE = { path: "/srv/images/debian.img", mtime: 1_000 };
const NEWER_BASE = { path: "/srv/images/debian.img", mtime: 3_000 };

type Own = "none" | "own";
type Base = "none" | "older" | "newer";

/** Expected: "own", "base", or the reason to wait. */
type Expected = "own" | "base" | "no-image" | "base-machine-running";

const TABLE: [UseBase, Own, Base, boolean, Expected][] = [
  // use_base, own image, base image, base machine running → decision
  ["if_newer", "none", "none", false, "no-image"],
  ["if_newer", "none", "older", false, "base"],
  ["if_newer", "own", "none", false, "own"],
  ["if_newer", "own", "older", false, "own"],
  ["if_newer", "own", "newer", false, "base"],
  ["if_newer", "none", "none", true, "base-machine-running"],
  ["if_newer", "none", "older", true, "base-machine-running"],
  ["if_newer", "own", "older", true, "base-machine-running"],
  ["if_newer", "own", "newer", true, "base-machine-running"],
  ["always", "none", "none", false, "no-image"],
  ["always", "none", "older", false, "base"],
  ["always", "own", "none", false, "no-image"],
  ["always", "own", "older", false, "base"],
  ["always", "own", "newer", false, "base"],
  ["always", "own", "older", true, "base-machine-running"],
  ["always", "none", "none", true, "base-machine-running"],
  ["never", "none", "none", false, "no-image"],
  ["never", "none", "older", false, "base"],
  ["never", "own", "none", false, "own"],
  ["never", "own", "newer", false, "own"],
  // The machine's own image does not depend on a running base machine.
  ["never", "own", "newer", true, "own"],
  ["never", "none", "older", true, "base-machine-running"],
];

for (const [useBase, own, base, running, expected] of TABLE) {
  Deno.test(`chooseImage() with use_base=${useBase}, ${own} own image, ${base} base, base machine ${running ? "running" : "stopped"}: ${expected}`, () => {
    const facts: ImageFacts = {
      own: own === "own" ? OWN : undefined,
      base: base === "older"
        ? OLDER_BASE
        : base === "newer"
        ? NEWER_BASE
        : undefined,
      basePath: OLDER_BASE.path,
      ownPath: OWN.path,
      baseMachineRunning: running,
    };
    const choice = chooseImage(useBase, facts);
    if (expected === "own" || expected === "base") {
      assert.deepEqual(choice, {
        kind: "start",
        image: expected === "own" ? OWN.path : OLDER_BASE.path,
        from: expected,
      });
    } else {
      assert.equal(choice.kind, "wait");
      assert.equal(choice.kind === "wait" && choice.reason, expected);
    }
  });
}

Deno.test("chooseImage() says what it waits for", () => {
  const facts = {
    own: undefined,
    base: undefined,
    basePath: "/srv/images/debian.img",
    ownPath: "/srv/forrest/machines/acme/app/build.img",
    baseMachineRunning: false,
  };
  assert.deepEqual(chooseImage("if_newer", facts), {
    kind: "wait",
    reason: "no-image",
    message:
      "waiting for an image: /srv/images/debian.img does not exist and no run has persisted one yet",
  });
  assert.equal(
    (chooseImage("always", facts) as { message: string }).message,
    "waiting for an image: /srv/images/debian.img does not exist",
  );
});

Deno.test("chooseImage() starts a machine without a base only from its own image", () => {
  for (const useBase of ["if_newer", "always", "never"] as const) {
    const facts: ImageFacts = {
      own: undefined,
      base: undefined,
      basePath: undefined,
      ownPath: OWN.path,
      baseMachineRunning: false,
    };
    assert.deepEqual(chooseImage(useBase, facts), {
      kind: "wait",
      reason: "no-image",
      message: `waiting for an image: ${OWN.path} does not exist, ` +
        "and the machine has no base_image or base_machine to start from",
    });
    if (useBase === "always") continue;
    assert.deepEqual(chooseImage(useBase, { ...facts, own: OWN }), {
      kind: "start",
      image: OWN.path,
      from: "own",
    });
  }
});
