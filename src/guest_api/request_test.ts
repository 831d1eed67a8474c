import assert from "node:assert/strict";
import { parseAuthorization, parseUploadPath, rawPathOf } from "./request.ts";

Deno.test("rawPathOf() keeps the path as sent, without the query", () => {
  assert.equal(
    rawPathOf("http://127.0.0.1:8080/artifact/a/../b?x=1"),
    "/artifact/a/../b",
  );
  assert.equal(
    rawPathOf("http://[::1]:80/artifact/a/%2e%2e#f"),
    "/artifact/a/%2e%2e",
  );
  assert.equal(rawPathOf("http://h"), "/");
});

const GOOD: [string, string, string[], string][] = [
  ["/artifact/artifact/out.txt", "artifact", ["out.txt"], "out.txt"],
  [
    "/artifact/images//deploy/x.wic",
    "images",
    ["deploy", "x.wic"],
    "deploy/x.wic",
  ],
  ["//artifact/a/b/", "a", ["b"], "b"],
  ["/artifact/a/with%20space", "a", ["with space"], "with%20space"],
  ["/artifact/a/%C3%A4.txt", "a", ["ä.txt"], "%C3%A4.txt"],
  ["/artifact/a/ä.txt", "a", ["ä.txt"], "%C3%A4.txt"],
  [
    `/artifact/a/${"d/".repeat(31)}f`,
    "a",
    [...Array(31).fill("d"), "f"],
    `${"d/".repeat(31)}f`,
  ],
  ["/artifact/a/...", "a", ["..."], "..."],
  ["/artifact/a/.hidden", "a", [".hidden"], ".hidden"],
];

for (const [path, store, segments, raw] of GOOD) {
  Deno.test(`parseUploadPath() reads ${path}`, () => {
    assert.deepEqual(parseUploadPath(path), { store, segments, rawPath: raw });
  });
}

const BAD: [string, number][] = [
  ["/status", 404],
  ["/", 404],
  ["/artifacts/a/b", 404],
  ["/artifact", 400],
  ["/artifact/a", 400],
  ["/artifact/a/", 400],
  ["/artifact/a/../b", 400],
  ["/artifact/a/./b", 400],
  ["/artifact/../etc/passwd", 400],
  ["/artifact/a/%2e%2e/b", 400],
  ["/artifact/a/%2E%2e", 400],
  ["/artifact/a/%2e", 400],
  ["/artifact/a/b%2F..%2Fc", 400],
  ["/artifact/a/b%00c", 400],
  ["/artifact/a/%zz", 400],
  ["/artifact/a/line%0aFAKE", 400],
  ["/artifact/a/x%0d%0aX-Injected:%201", 400],
  ["/artifact/a/del%7f", 400],
  ["/artifact/a/.forrest-upload-0123456789abcdef", 400],
  [`/artifact/a/${"d/".repeat(32)}f`, 400],
  [
    `/artifact/a/${"x".repeat(200)}/${"y".repeat(200)}/${"z".repeat(200)}/${
      "w".repeat(200)
    }/${"v".repeat(200)}/${"u".repeat(200)}`,
    400,
  ],
  ["/artifact/a/%C3", 400],
  [`/artifact/a/${"x".repeat(256)}`, 400],
  [`/artifact/a/${"%C3%A4".repeat(128)}`, 400],
];

for (const [path, status] of BAD) {
  Deno.test(`parseUploadPath() refuses ${path.slice(0, 40)} with ${status}`, () => {
    const result = parseUploadPath(path);
    assert.equal("status" in result && result.status, status);
  });
}

Deno.test("parseAuthorization() reads Bearer with one or two tokens, nothing else", () => {
  assert.deepEqual(parseAuthorization("Bearer abc"), {
    run: "abc",
    store: undefined,
  });
  assert.deepEqual(parseAuthorization("Bearer  abc \t def "), {
    run: "abc",
    store: "def",
  });
  assert.equal(parseAuthorization(null), undefined);
  assert.equal(parseAuthorization(""), undefined);
  assert.equal(parseAuthorization("Bearer"), undefined);
  assert.equal(parseAuthorization("bearer abc"), undefined);
  assert.equal(parseAuthorization("Basic YWJjOmRlZg=="), undefined);
  assert.equal(parseAuthorization("Bearer a b c"), undefined);
});
