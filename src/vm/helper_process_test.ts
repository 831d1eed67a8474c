import assert from "node:assert/strict";
import { join } from "node:path";
import {
  HelperProcess,
  HelperStartError,
  isHelperRunning,
  stopLeftoverHelper,
} from "./helper_process.ts";

async function withDir(body: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "forrest-helper-" });
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Ready once `file` exists in `dir`. */
function fileAppears(dir: string, file: string) {
  return async (_helper: HelperProcess, signal: AbortSignal) => {
    while (!signal.aborted) {
      try {
        await Deno.stat(join(dir, file));
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    }
  };
}

Deno.test("HelperProcess.start() waits until ready; stop() ends it with SIGTERM", async () => {
  await withDir(async (dir) => {
    const helper = await HelperProcess.start({
      name: "test",
      binary: "sleep",
      args: ["30"],
      cwd: dir,
      ready: async (helper) => {
        while (!(await isHelperRunning(helper.record))) {
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      },
    });
    assert.deepEqual(helper.record.argv, ["sleep", "30"]);
    assert.ok(await isHelperRunning(helper.record));
    await helper.stop();
    assert.equal((await helper.exited).signal, "SIGTERM");
    assert.ok(!(await isHelperRunning(helper.record)));
  });
});

Deno.test("HelperProcess.start() reports a helper that exits first", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      HelperProcess.start({
        name: "test",
        binary: "sh",
        args: ["-c", "exit 3"],
        cwd: dir,
        ready: fileAppears(dir, "never"),
      }),
      new HelperStartError("sh exited at start with code 3"),
    );
  });
});

Deno.test("HelperProcess.start() stops a helper that is not ready in time", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      HelperProcess.start({
        name: "test",
        binary: "sleep",
        args: ["30"],
        cwd: dir,
        ready: fileAppears(dir, "never"),
        readyTimeout: 200,
      }),
      new HelperStartError("sleep was not ready within 0.2 s"),
    );
  });
});

Deno.test("HelperProcess.start() names a missing program", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      HelperProcess.start({
        name: "test",
        binary: "forrest-no-such-helper",
        args: [],
        cwd: dir,
        ready: () => Promise.resolve(),
      }),
      new HelperStartError(
        "forrest-no-such-helper is not installed (run scripts/setup.sh)",
      ),
    );
  });
});

Deno.test("stopLeftoverHelper() stops the recorded process and nothing else", async () => {
  const child = new Deno.Command("sleep", { args: ["30"] }).spawn();
  const record = { name: "test", pid: child.pid, argv: ["sleep", "30"] };
  // Until the child has exec'd, its /proc cmdline is still Deno's.
  for (let i = 0; i < 100 && !(await isHelperRunning(record)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(await isHelperRunning(record));
  // A reused pid runs something else: left alone.
  const other = { ...record, argv: ["sleep", "31"] };
  assert.ok(!(await isHelperRunning(other)));
  await stopLeftoverHelper(other);
  assert.ok(await isHelperRunning(record));
  await stopLeftoverHelper(record);
  assert.equal((await child.status).signal, "SIGTERM");
});

Deno.test("HelperProcess.start() reports the process before it is ready, and stops it when that fails", async () => {
  await withDir(async (dir) => {
    const seen: number[] = [];
    let readyCalled = false;
    const helper = await HelperProcess.start({
      name: "test",
      binary: "sleep",
      args: ["30"],
      cwd: dir,
      onSpawn: (record) => {
        assert.ok(!readyCalled, "onSpawn comes before ready");
        seen.push(record.pid);
        return Promise.resolve();
      },
      ready: () => {
        readyCalled = true;
        return Promise.resolve();
      },
    });
    assert.deepEqual(seen, [helper.pid]);
    await helper.stop();

    let spawned:
      | { pid: number; argv: readonly string[]; name: string }
      | undefined;
    await assert.rejects(
      HelperProcess.start({
        name: "test",
        binary: "sleep",
        args: ["31"],
        cwd: dir,
        onSpawn: (record) => {
          spawned = record;
          return Promise.reject(new Error("cannot write the record"));
        },
        ready: () => Promise.resolve(),
      }),
      /cannot write the record/,
    );
    assert.ok(spawned);
    assert.ok(!(await isHelperRunning(spawned)), "stopped");
  });
});
