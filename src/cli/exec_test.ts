import assert from "node:assert/strict";
import { parseForward } from "./exec.ts";

Deno.test("parseForward() reads GUEST_PORT:127.0.0.1:HOST_PORT", () => {
  assert.deepEqual(parseForward("80:127.0.0.1:3142"), {
    guestPort: 80,
    hostAddress: "127.0.0.1",
    hostPort: 3142,
  });
  assert.deepEqual(parseForward("8081:localhost:1").hostPort, 1);
  assert.throws(
    () => parseForward("8080:127.0.0.1:3142"),
    /Cannot forward guest port 8080 \("8080:127\.0\.0\.1:3142"\): it is Forrest's guest API/,
  );
});

Deno.test("parseForward() rejects other hosts and bad ports", () => {
  for (
    const text of [
      "80:10.0.0.1:3142",
      "0:127.0.0.1:1",
      "80:127.0.0.1:70000",
      "80",
    ]
  ) {
    assert.throws(
      () => parseForward(text),
      new SyntaxError(
        `Cannot parse forward "${text}": expected GUEST_PORT:127.0.0.1:HOST_PORT, such as "80:127.0.0.1:3142"`,
      ),
    );
  }
});
