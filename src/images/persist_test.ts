import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { fileSha256 } from "../../tests/files.ts";
import { withTempDir } from "../../tests/temp.ts";
import { pathExists, runChecked } from "../host/mod.ts";
import { Secret } from "../log/mod.ts";
import { DiskForker } from "./fork.ts";
import {
  MACHINE_IMAGE_MODE,
  persistFork,
  type PersistStep,
  removePersistLeftovers,
  tokenMatches,
  withImageLock,
} from "./persist.ts";

const encode = (text: string) => new TextEncoder().encode(text);
const TOKEN = new Secret("s3cret-token-0123456789");

Deno.test("tokenMatches() accepts the token, with or without a trailing newline", async () => {
  assert.equal(
    await tokenMatches(encode("s3cret-token-0123456789"), TOKEN),
    true,
  );
  assert.equal(
    await tokenMatches(encode("s3cret-token-0123456789\n"), TOKEN),
    true,
  );
  assert.equal(
    await tokenMatches(encode("s3cret-token-0123456789\r\n"), TOKEN),
    true,
  );
});

Deno.test("tokenMatches() rejects anything else", async () => {
  const cases = [
    "wrong",
    "",
    "\n",
    "s3cret-token-012345678", // one short
    "s3cret-token-0123456789x", // longer than the token
    "s3cret-token-0123456789\n\n",
    " s3cret-token-0123456789",
    "s3cret-token-0123456789 ",
  ];
  for (const text of cases) {
    assert.equal(await tokenMatches(encode(text), TOKEN), false, text);
  }
  assert.equal(await tokenMatches(undefined, TOKEN), false); // no persist file
  assert.equal(
    await tokenMatches(encode("s3cret-token-0123456789"), undefined),
    false,
  ); // no token set
});

const MiB = 1024 * 1024;

/**
 * A machine image (old contents) and a fork of the given format whose
 * contents differ; returns the fork and the sha256 a persisted copy must have.
 */
async function prepare(dir: string, format: "raw" | "qcow2") {
  const target = join(dir, "machines/acme/app/build.img");
  await Deno.mkdir(join(dir, "machines/acme/app"), { recursive: true });
  await Deno.writeFile(target, new Uint8Array(2 * MiB).fill(0x11));
  const oldSum = await fileSha256(target);
  await Deno.mkdir(join(dir, "run"));
  const base = join(dir, "images-base.img");
  await Deno.writeFile(base, new Uint8Array(2 * MiB).fill(0x33));
  // A raw fork is what a reflink gives: a file with the image's bytes (a
  // plain copy here, so the raw path is tested on any file system).
  const fork = format === "raw"
    ? await Deno.copyFile(base, join(dir, "run/disk.img")).then(() => ({
      path: join(dir, "run/disk.img"),
      format: "raw" as const,
      method: "reflink" as const,
    }))
    : await new DiskForker().fork(base, join(dir, "run/disk"), {
      clone: "qcow2",
    });
  assert.equal(fork.format, format);
  // What a job does to its disk: change the first 64 KiB.
  await runChecked("qemu-io", [
    "-f",
    fork.format,
    "-c",
    "write -P 0x44 0 64k",
    fork.path,
  ]);
  const expected = join(dir, "expected.raw");
  await runChecked("qemu-img", [
    "convert",
    "-O",
    "raw",
    "-f",
    fork.format,
    fork.path,
    expected,
  ]);
  const newSum = await fileSha256(expected);
  await Deno.remove(expected);
  return { target, fork, oldSum, newSum };
}

for (const format of ["raw", "qcow2"] as const) {
  Deno.test(`persistFork() makes a ${format} fork the machine image`, async () => {
    await withTempDir(async (dir) => {
      const { target, fork, newSum } = await prepare(dir, format);
      await persistFork(fork, target);
      assert.equal(await fileSha256(target), newSum);
      assert.deepEqual(
        await removePersistLeftovers(join(dir, "machines/acme/app")),
        [],
      );
      // A raw fork is moved, not copied; a qcow2 fork stays for the run's clean-up.
      assert.equal(
        await pathExists(fork.path),
        format === "qcow2",
      );
    });
  });

  Deno.test(`persistFork() of a ${format} fork leaves image and new folders to Forrest's user only`, async () => {
    await withTempDir(async (dir) => {
      const { fork } = await prepare(dir, format);
      await Deno.chmod(fork.path, 0o644); // as cp and qemu-img make them
      const target = join(dir, "fresh/acme/new/build.img");
      const modes: number[] = [];
      await persistFork(fork, target, {
        beforeStep: async (step) => {
          if (step !== "written") return;
          // The temp file, already full, before it is renamed.
          for await (const entry of Deno.readDir(join(dir, "fresh/acme/new"))) {
            modes.push(
              (await Deno.stat(join(dir, "fresh/acme/new", entry.name))).mode! &
                0o777,
            );
          }
        },
      });
      assert.deepEqual(modes, [MACHINE_IMAGE_MODE]);
      assert.equal((await Deno.stat(target)).mode! & 0o777, 0o600);
      for (const folder of ["fresh", "fresh/acme", "fresh/acme/new"]) {
        assert.equal(
          (await Deno.stat(join(dir, folder))).mode! & 0o777,
          0o700,
          folder,
        );
      }
    });
  });

  const steps: [PersistStep, "old" | "new"][] = [
    ["writing", "old"],
    ["written", "old"],
    ["synced", "old"],
    ["renamed", "new"],
  ];
  for (const [step, survivor] of steps) {
    Deno.test(`persistFork() of a ${format} fork killed before "${step}" leaves the ${survivor} image whole`, async () => {
      await withTempDir(async (dir) => {
        const { target, fork, oldSum, newSum } = await prepare(dir, format);
        const child = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            fileURLToPath(
              new URL("../../tests/fixtures/persist_child.ts", import.meta.url),
            ),
            fork.path,
            fork.format,
            target,
            step,
          ],
          stdout: "null",
          stderr: "piped",
        }).output();
        assert.equal(
          child.signal,
          "SIGKILL",
          new TextDecoder().decode(child.stderr),
        );
        assert.equal(
          await fileSha256(target),
          survivor === "old" ? oldSum : newSum,
        );
        // Whatever the crash left beside the image is a temp file, and only that.
        const folder = join(dir, "machines/acme/app");
        await removePersistLeftovers(folder);
        const left = (await Array.fromAsync(Deno.readDir(folder))).map((e) =>
          e.name
        );
        assert.deepEqual(left, ["build.img"]);
      });
    });
  }
}

Deno.test("removePersistLeftovers() removes only persist temp files", async () => {
  await withTempDir(async (dir) => {
    for (
      const name of [
        ".build.img.tmp-1a2b3c4d",
        "build.img",
        "build.img.broken",
        ".hidden",
      ]
    ) {
      await Deno.writeTextFile(join(dir, name), "x");
    }
    assert.deepEqual(await removePersistLeftovers(dir), [
      ".build.img.tmp-1a2b3c4d",
    ]);
    assert.deepEqual(await removePersistLeftovers(join(dir, "none")), []);
  });
});

Deno.test("persistFork() waits to rename while another holds the image's lock", async () => {
  await withTempDir(async (dir) => {
    const { target, fork, oldSum, newSum } = await prepare(dir, "raw");
    const release = Promise.withResolvers<void>();
    const locked = Promise.withResolvers<void>();
    const holder = withImageLock(target, async () => {
      locked.resolve();
      await release.promise;
      // Still the old image: the persist has not renamed under the lock.
      return await fileSha256(target);
    });
    await locked.promise;
    const synced = Promise.withResolvers<void>();
    const persisted = persistFork(fork, target, {
      beforeStep: (step) => {
        if (step === "synced") synced.resolve();
      },
    });
    await synced.promise;
    // The rename is next: an unlocked one would be done well within this.
    await new Promise((resolve) => setTimeout(resolve, 100));
    release.resolve();
    assert.equal(await holder, oldSum);
    await persisted;
    assert.equal(await fileSha256(target), newSum);
  });
});
