import assert from "node:assert/strict";
import { join } from "node:path";
import { RunDir, RunDirError, runDirPath } from "./run_dir.ts";
import { withTempDir } from "../../tests/temp.ts";

const TRIPLET = { owner: "acme", repo: "app", machine: "build" };

function withBase(body: (dir: string) => Promise<void>): Promise<void> {
  return withTempDir(body, "forrest-run-");
}

Deno.test("RunDir.create() makes runs/<owner>/<repo>/<machine>/<runner> with mode 0700", async () => {
  await withBase(async (base) => {
    const run = await RunDir.create(base, TRIPLET, "forrest-build-abc");
    assert.equal(run.path, join(base, "runs/acme/app/build/forrest-build-abc"));
    assert.equal((await Deno.stat(run.path)).mode! & 0o777, 0o700);
    await assert.rejects(
      RunDir.create(base, TRIPLET, "forrest-build-abc"),
      new RunDirError(`Run directory "${run.path}" exists already`),
    );
  });
});

Deno.test("runDirPath() refuses names that would leave the runs folder", () => {
  const cases: [typeof TRIPLET, string, RegExp][] = [
    [{ ...TRIPLET, owner: ".." }, "r", /not a valid GitHub owner name/],
    [{ ...TRIPLET, repo: ".." }, "r", /not a valid GitHub repository name/],
    [{ ...TRIPLET, machine: "a/b" }, "r", /not a valid machine name/],
    [TRIPLET, "../../etc", /not a valid runner name/],
    [TRIPLET, "run\0ner", /not a valid runner name/],
    [TRIPLET, "", /not a valid runner name/],
  ];
  for (const [triplet, runner, message] of cases) {
    assert.throws(() => runDirPath("/srv", triplet, runner), message);
  }
});

Deno.test("RunDir.create() refuses paths too long for Unix sockets", async () => {
  await withBase(async (base) => {
    const long = { owner: "o".repeat(39), repo: "r".repeat(60), machine: "m" };
    await assert.rejects(
      RunDir.create(base, long, "runner"),
      /too long for Unix sockets/,
    );
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
    await run.removeDisks();
    const left = (await Array.fromAsync(Deno.readDir(run.path))).map((e) =>
      e.name
    ).sort();
    assert.deepEqual(left, ["log.txt", "output.txt", "run.json"]);
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
