/**
 * systemd readiness: under `Type=notify`, `forrest serve` says READY=1
 * only once its API listens and its first poll has run, and STOPPING=1
 * when it is asked to stop. NOTIFY_SOCKET points at the test's own
 * datagram socket, standing in for systemd.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "./temp.ts";
import { withServe } from "./serve.ts";

Deno.test("serve: READY=1 after the API listens and the first poll ran", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "notify.sock");
    const socket = Deno.listenDatagram({ path, transport: "unixpacket" });
    const messages: string[] = [];
    const receiving = (async () => {
      try {
        for (;;) {
          const [data] = await socket.receive();
          messages.push(new TextDecoder().decode(data));
        }
      } catch { /* closed */ }
    })();
    try {
      await withServe({
        image: "/nonexistent/debian.img",
        env: { NOTIFY_SOCKET: path },
      }, async (s) => {
        await s.double.waitFor(
          () => messages.some((m) => m.includes("READY=1")),
          10_000,
          "READY=1",
        );
        assert.deepEqual(messages, ["READY=1\nSTATUS=Serving 1 repository"]);
        // Its first poll had run: the double was asked for queued runs.
        assert.ok(
          s.double.requests.some((r) =>
            r.path.endsWith("/actions/runs") && r.query.status === "queued"
          ),
        );
        assert.equal((await s.fetch("/status")).status, 200);
        s.kill("SIGTERM");
        await s.exited;
        await s.double.waitFor(
          () => messages.length === 2,
          10_000,
          "STOPPING=1",
        );
        // The order of assignments in a message does not matter to systemd.
        assert.deepEqual(messages[1]!.split("\n").sort(), [
          "STATUS=Stopping: running jobs may finish",
          "STOPPING=1",
        ]);
      });
    } finally {
      socket.close();
      await receiving;
    }
  });
});
