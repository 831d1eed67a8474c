import assert from "node:assert/strict";
import { join } from "node:path";
import {
  QmpClient,
  QmpCommandError,
  QmpConnectionError,
  type QmpEvent,
  QmpTimeoutError,
} from "./qmp.ts";

/** The qemu side of one QMP connection, driven line by line by a test. */
interface Peer {
  send(message: unknown): Promise<void>;
  /** The next command the client sent. */
  receive(): Promise<{ execute: string; id: number; arguments?: unknown }>;
  /** Drops the connection, as a dying qemu does. */
  drop(): void;
}

const GREETING = {
  QMP: {
    version: { qemu: { major: 7, minor: 2, micro: 0 } },
    capabilities: [],
  },
};

/**
 * Runs `test` against a client connected to a scripted peer on a real Unix
 * socket; the peer has already answered the greeting and qmp_capabilities.
 */
async function withPeer(
  test: (client: QmpClient, peer: Peer) => Promise<void>,
  options: { timeout?: number } = {},
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "forrest-qmp-" });
  const path = join(dir, "qmp.sock");
  const listener = Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const connecting = QmpClient.connect(path, options);
  const conn = await accepted;
  const reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const peer: Peer = {
    send: async (message) => {
      await conn.write(
        new TextEncoder().encode(`${JSON.stringify(message)}\n`),
      );
    },
    receive: async () => {
      while (!buffer.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error("client closed");
        buffer += value;
      }
      const line = buffer.slice(0, buffer.indexOf("\n"));
      buffer = buffer.slice(buffer.indexOf("\n") + 1);
      return JSON.parse(line);
    },
    drop: () => {
      try {
        conn.close();
      } catch { /* closed */ }
    },
  };
  let client: QmpClient | undefined;
  try {
    await peer.send(GREETING);
    const capabilities = await peer.receive();
    assert.equal(capabilities.execute, "qmp_capabilities");
    await peer.send({ return: {}, id: capabilities.id });
    client = await connecting;
    await test(client, peer);
  } finally {
    await client?.close();
    await reader.cancel().catch(() => {});
    peer.drop();
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("QmpClient.execute() returns the answer with the matching id", async () => {
  await withPeer(async (client, peer) => {
    const status = client.execute("query-status");
    const command = await peer.receive();
    assert.equal(command.execute, "query-status");
    await peer.send({
      return: { status: "running", running: true },
      id: command.id,
    });
    assert.deepEqual(await status, { status: "running", running: true });
  });
});

Deno.test("QmpClient.execute() sends arguments", async () => {
  await withPeer(async (client, peer) => {
    const done = client.execute("human-monitor-command", {
      "command-line": "info pci",
    });
    const command = await peer.receive();
    assert.deepEqual(command.arguments, { "command-line": "info pci" });
    await peer.send({ return: "Bus 0", id: command.id });
    assert.equal(await done, "Bus 0");
  });
});

Deno.test("QmpClient delivers events that arrive between a command and its answer", async () => {
  await withPeer(async (client, peer) => {
    const events: QmpEvent[] = [];
    client.onEvent((event) => events.push(event));
    const shutdown = client.nextEvent("SHUTDOWN", { timeout: 5_000 });
    const powerdown = client.execute("system_powerdown");
    const command = await peer.receive();
    await peer.send({
      event: "POWERDOWN",
      timestamp: { seconds: 1, microseconds: 0 },
    });
    await peer.send({ return: {}, id: command.id });
    await peer.send({
      event: "SHUTDOWN",
      data: { guest: true, reason: "guest-shutdown" },
      timestamp: { seconds: 2, microseconds: 0 },
    });
    assert.deepEqual(await powerdown, {});
    assert.deepEqual((await shutdown).data, {
      guest: true,
      reason: "guest-shutdown",
    });
    assert.deepEqual(events.map((e) => e.event), ["POWERDOWN", "SHUTDOWN"]);
  });
});

Deno.test("QmpClient matches answers that come back in another order", async () => {
  await withPeer(async (client, peer) => {
    const first = client.execute("query-status");
    const second = client.execute("query-name");
    const a = await peer.receive();
    const b = await peer.receive();
    await peer.send({ return: { name: "vm" }, id: b.id });
    await peer.send({ return: { status: "running" }, id: a.id });
    assert.deepEqual(await first, { status: "running" });
    assert.deepEqual(await second, { name: "vm" });
  });
});

Deno.test("QmpClient.execute() throws QmpCommandError with QMP's error class", async () => {
  await withPeer(async (client, peer) => {
    const result = client.execute("no-such-command");
    const command = await peer.receive();
    await peer.send({
      error: {
        class: "CommandNotFound",
        desc: "The command no-such-command has not been found",
      },
      id: command.id,
    });
    await assert.rejects(result, (error: unknown) => {
      assert.ok(error instanceof QmpCommandError);
      assert.equal(error.errorClass, "CommandNotFound");
      assert.equal(error.command, "no-such-command");
      assert.equal(
        error.message,
        'QMP command "no-such-command" failed: The command no-such-command has not been found (CommandNotFound)',
      );
      return true;
    });
  });
});

Deno.test("QmpClient rejects pending commands and event waits when the connection drops", async () => {
  await withPeer(async (client, peer) => {
    const status = client.execute("query-status");
    const shutdown = client.nextEvent("SHUTDOWN");
    await peer.receive();
    peer.drop();
    await assert.rejects(status, QmpConnectionError);
    await assert.rejects(shutdown, QmpConnectionError);
    assert.equal(client.closed, true);
    await assert.rejects(client.execute("query-status"), QmpConnectionError);
  });
});

Deno.test("QmpClient.execute() times out when qemu does not answer", async () => {
  await withPeer(async (client, peer) => {
    const result = client.execute("query-status", undefined, { timeout: 50 });
    await peer.receive();
    await assert.rejects(result, (error: unknown) => {
      assert.ok(error instanceof QmpTimeoutError);
      assert.equal(
        error.message,
        'No answer to QMP command "query-status" within 50 ms',
      );
      return true;
    });
  });
});

Deno.test("QmpClient.nextEvent() times out and can be aborted", async () => {
  await withPeer(async (client) => {
    await assert.rejects(
      client.nextEvent("SHUTDOWN", { timeout: 20 }),
      QmpTimeoutError,
    );
    const controller = new AbortController();
    const waiting = client.nextEvent("SHUTDOWN", { signal: controller.signal });
    controller.abort(new Error("stop waiting"));
    await assert.rejects(waiting, /stop waiting/);
  });
});

Deno.test("QmpClient.connect() fails when nothing listens", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      QmpClient.connect(join(dir, "none.sock")),
      Deno.errors.NotFound,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
