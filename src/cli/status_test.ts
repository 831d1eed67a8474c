import assert from "node:assert/strict";
import { sseEvents } from "./status.ts";

Deno.test("sseEvents() reads events across chunks, joins data lines, skips comments", async () => {
  const chunks = [
    ": keep-alive\n\nevent: sta",
    'tus\ndata: {"a":\ndata: 1}\n',
    "\nid: 3\nretry: 10\n\ndata: plain\r\n\r\n",
    "event: empty\n\n",
  ];
  const events = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(sseEvents()),
  );
  assert.deepEqual(events, [
    { event: "status", data: '{"a":\n1}' },
    { event: "message", data: "plain" },
  ]);
});
