import assert from "node:assert/strict";
import { join } from "node:path";
import type { Triplet } from "../config/mod.ts";
import { RunDir, RunDirError, runDirPath } from "./run_dir.ts";
import { MAX_BASE_DIR, RUN_SOCKETS } from "./socket_dir.ts";
import { pathOfLength, withTempDir } from "../../tests/temp.ts";

const TRIPLET = {
  scope: { kind: "repository" as const, owner: "acme", repo: "app" },
  machine: "build",
};

function withBase(body: (dir: string) => Promise<void>): Promise<void> {
  return withTempDir(body, "forrest-run-");
}

Deno.test("RunDir.create() makes runs/<owner>/<repo>/<machine>/<runner> with mode 0700", async () => {
  await withBase(async (base) => {
    const run = await RunDir.create(base, TRIPLET, "forrest-build-abc");
    assert.equal(run.path, join(base, "runs/acme/app/build/forrest-build-abc"));
    assert.equal((await Deno.stat(run.path)).mode! & 0o777, 0o700);
    for (const folder of ["runs", "runs/acme", "runs/acme/app/build"]) {
      const mode = (await Deno.stat(join(base, folder))).mode! & 0o077;
      assert.equal(mode, 0, `${folder} is private`);
    }
    await assert.rejects(
      RunDir.create(base, TRIPLET, "forrest-build-abc"),
      new RunDirError(`Run directory "${run.path}" exists already`),
    );
  });
});

Deno.test("runDirPath() refuses names that would leave the runs folder", () => {
  const scope = TRIPLET.scope;
  const cases: [Triplet, string, RegExp][] = [
    [
      { ...TRIPLET, scope: { ...scope, owner: ".." } },
      "r",
      /not a valid GitHub owner name/,
    ],
    [
      { ...TRIPLET, scope: { ...scope, repo: ".." } },
      "r",
      /not a valid GitHub repository name/,
    ],
    [
      { machine: "m", scope: { kind: "organization", org: ".." } },
      "r",
      /not a valid GitHub owner name/,
    ],
    [{ ...TRIPLET, machine: "a/b" }, "r", /not a valid machine name/],
    [TRIPLET, "../../etc", /not a valid runner name/],
    [TRIPLET, "run\0ner", /not a valid runner name/],
    [TRIPLET, "", /not a valid runner name/],
  ];
  for (const [triplet, runner, message] of cases) {
    assert.throws(() => runDirPath("/srv", triplet, runner), message);
  }
});

/** A base_dir of exactly `length` bytes below a temp folder. */
async function withLongBase(
  length: number,
  body: (base: string) => Promise<void>,
): Promise<void> {
  await withBase(async (temp) => {
    await body(pathOfLength(temp, length));
  });
}

Deno.test("RunDir.create() keeps the sockets short for the longest names", async () => {
  await withLongBase(60, async (base) => {
    const triplet = {
      scope: {
        kind: "repository" as const,
        owner: "o".repeat(39),
        repo: "r".repeat(100),
      },
      machine: "m".repeat(64),
    };
    const runner = `forrest-${triplet.machine}-0123456789abcdef`;
    const run = await RunDir.create(base, triplet, runner);
    assert.equal(
      run.path,
      join(
        base,
        "runs",
        triplet.scope.owner,
        triplet.scope.repo,
        triplet.machine,
        runner,
      ),
    );
    assert.match(run.socketDir, new RegExp(`^${base}/sockets/[0-9a-f]{16}$`));
    assert.equal((await Deno.stat(run.socketDir)).mode! & 0o777, 0o700);
    for (const name of ["shell", "qmp"] as const) {
      assert.ok(run.socket(name).length <= 107, run.socket(name));
      // A socket that Linux accepts, and that the link in the run
      // directory leads to.
      const listener = Deno.listen({
        transport: "unix",
        path: run.socket(name),
      });
      try {
        const linked = join(run.file("socketLink"), RUN_SOCKETS[name]);
        assert.ok((await Deno.lstat(linked)).isSocket);
      } finally {
        listener.close();
      }
    }
    // forrest shell and recovery open the run by its path and find the
    // same sockets.
    assert.equal(RunDir.open(run.path).socket("shell"), run.socket("shell"));
    await run.remove();
    assert.deepEqual(
      await Array.fromAsync(Deno.readDir(join(base, "sockets"))),
      [],
    );
  });
});

Deno.test("RunDir.create() refuses a base_dir too long for the sockets", async () => {
  await withLongBase(MAX_BASE_DIR + 1, async (base) => {
    await assert.rejects(
      RunDir.create(base, TRIPLET, "runner"),
      new RunDirError(
        `Base directory "${base}" is ${MAX_BASE_DIR + 1} bytes long, too ` +
          "long for the Unix sockets of the runs below it (at most 65 bytes, " +
          "as Linux limits socket paths to 107): choose a shorter base_dir",
      ),
    );
    await assert.rejects(Deno.stat(base), Deno.errors.NotFound);
  });
});

Deno.test("RunDir.create() replaces a leftover socket folder of the same run", async () => {
  await withBase(async (base) => {
    const first = await RunDir.create(base, TRIPLET, "r1");
    await Deno.writeTextFile(join(first.socketDir, "qmp.sock"), "stale");
    await Deno.remove(first.path, { recursive: true }); // by hand
    const again = await RunDir.create(base, TRIPLET, "r1");
    assert.equal(again.socketDir, first.socketDir);
    assert.deepEqual(await Array.fromAsync(Deno.readDir(again.socketDir)), []);
    await again.remove();
  });
});

Deno.test("RunDir records round-trip and removeDisks() keeps the logs", async () => {
  await withBase(async (base) => {
    const run = await RunDir.create(base, TRIPLET, "r1");
    const record = {
      triplet: TRIPLET,
      runner: "r1",
      pid: 1234,
      startedAt: "2026-11-22T06:00:00.000Z",
    };
    await run.writeRecord(record);
    assert.deepEqual(await run.readRecord(), record);
    for (
      const name of [
        "disk.img",
        "cidata.img",
        "jobdata.img",
        "vmlinuz",
        "log.txt",
        "output.txt",
      ]
    ) {
      await Deno.writeTextFile(join(run.path, name), "x");
    }
    await Deno.writeTextFile(run.socket("qmp"), "x");
    await run.removeDisks();
    const left = (await Array.fromAsync(Deno.readDir(run.path))).map((e) =>
      e.name
    ).sort();
    assert.deepEqual(left, ["log.txt", "output.txt", "run.json"]);
    await assert.rejects(Deno.stat(run.socketDir), Deno.errors.NotFound);
  });
});

Deno.test("RunDir.remove() removes the run and the folders it leaves empty", async () => {
  await withBase(async (base) => {
    const first = await RunDir.create(base, TRIPLET, "r1");
    const second = await RunDir.create(base, TRIPLET, "r2");
    await Deno.writeTextFile(join(first.path, "log.txt"), "x");
    await first.remove();
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(join(base, "runs/acme/app/build"))))
        .map((e) => e.name),
      ["r2"],
    );
    await second.remove();
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(join(base, "runs")))).length,
      0,
    );
  });
});
