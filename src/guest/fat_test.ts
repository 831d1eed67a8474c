import assert from "node:assert/strict";
import { join } from "node:path";
import { readFatFile, readFatLabel, writeFatImage } from "./fat.ts";
import {
  parseExitCode,
  readJobResult,
  writeConfigDisks,
} from "./config_disks.ts";
import { withTempDir } from "../../tests/temp.ts";

function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  return withTempDir(body, "forrest-fat-");
}

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("writeFatImage() and readFatFile() round-trip files, labels and folders", async () => {
  await withDir(async (dir) => {
    const image = join(dir, "jobdata.img");
    const binary = new Uint8Array(300_000).map((_, i) => (i * 7) % 256);
    await writeFatImage(
      image,
      "JOBDATA",
      new Map([
        ["job.sh", bytes("#!/bin/sh\necho hi\n")],
        ["long-file-name.conf", bytes("x=1\n")],
        ["sub/dir/nested.txt", bytes("deep\n")],
        ["blob.bin", binary],
      ]),
    );
    assert.equal(await readFatLabel(image), "JOBDATA");
    assert.deepEqual(
      await readFatFile(image, "job.sh"),
      bytes("#!/bin/sh\necho hi\n"),
    );
    assert.deepEqual(
      await readFatFile(image, "long-file-name.conf"),
      bytes("x=1\n"),
    );
    assert.deepEqual(
      await readFatFile(image, "sub/dir/nested.txt"),
      bytes("deep\n"),
    );
    assert.deepEqual(await readFatFile(image, "blob.bin"), binary);
    assert.equal(await readFatFile(image, "persist"), undefined);
    // Nothing but the image is left beside it.
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      [
        "jobdata.img",
      ],
    );
  });
});

Deno.test("writeFatImage() grows past 1 MiB when the files need it, and replaces an old image", async () => {
  await withDir(async (dir) => {
    const image = join(dir, "big.img");
    await writeFatImage(image, "CIDATA", new Map([["a", bytes("old")]]));
    assert.equal((await Deno.stat(image)).size, 1024 * 1024);
    const large = new Uint8Array(3 * 1024 * 1024).fill(1);
    await writeFatImage(image, "CIDATA", new Map([["large", large]]));
    assert.ok((await Deno.stat(image)).size > 3 * 1024 * 1024);
    assert.equal(await readFatFile(image, "a"), undefined);
    assert.equal((await readFatFile(image, "large"))?.length, large.length);
  });
});

Deno.test("readJobResult() reads persist and exit-code back from JOBDATA", async () => {
  await withDir(async (dir) => {
    const paths = {
      cidata: join(dir, "cidata.img"),
      jobdata: join(dir, "jobdata.img"),
    };
    await writeConfigDisks(paths, {
      cloudInit: new Map([["meta-data", "instance-id: x\n"]]),
      jobConfig: new Map([["job.sh", "true\n"], ["persist", "token\n"], [
        "exit-code",
        "3\n",
      ]]),
    });
    assert.equal(await readFatLabel(paths.cidata), "CIDATA");
    assert.deepEqual(await readJobResult(paths.jobdata), {
      persist: bytes("token\n"),
      exitCode: 3,
    });
    await writeConfigDisks(paths, {
      cloudInit: new Map(),
      jobConfig: new Map([["job.sh", "true\n"]]),
    });
    assert.deepEqual(await readJobResult(paths.jobdata), {
      persist: undefined,
      exitCode: undefined,
    });
  });
});

Deno.test("parseExitCode() takes whole numbers from 0 to 255 only", () => {
  assert.equal(parseExitCode("0\n"), 0);
  assert.equal(parseExitCode(" 255 "), 255);
  for (const bad of ["", "256", "-1", "3.0", "abc", "1 2", "0x10"]) {
    assert.equal(parseExitCode(bad), undefined, bad);
  }
});
