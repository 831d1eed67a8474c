import assert from "node:assert/strict";
import { isReadyEvent } from "./late_jobdata.ts";

Deno.test("isReadyEvent() is the guest opening the ready port, nothing else", () => {
  const event = (data: Record<string, unknown>) => ({
    event: "VSERPORT_CHANGE",
    data,
  });
  assert.ok(isReadyEvent(event({ id: "forrest-ready", open: true })));
  assert.ok(!isReadyEvent(event({ id: "forrest-ready", open: false })));
  assert.ok(!isReadyEvent(event({ id: "other", open: true })));
  assert.ok(
    !isReadyEvent({ event: "SHUTDOWN", data: { id: "forrest-ready" } }),
  );
  assert.ok(!isReadyEvent({ event: "VSERPORT_CHANGE" }));
});
