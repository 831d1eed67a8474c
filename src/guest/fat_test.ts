import assert from "node:assert/strict";
import { join } from "node:path";
import { readFatFile, readFatLabel, writeFatImage } from "./fat.ts";
import {
  JOB_RESULT_MAX_BYTES,
  parseExitCode,
  readJobResult,
  writeConfigDisks,
} from "./config_disks.ts";
import { runChecked } from "../host/mod.ts";
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

Deno.test("readJobResult() refuses a persist file larger than JOB_RESULT_MAX_BYTES", async () => {
  await withDir(async (dir) => {
    // What a job can do: fill JOBDATA's persist with far more than a token.
    const jobdata = join(dir, "jobdata.img");
    await writeFatImage(
      jobdata,
      "JOBDATA",
      new Map([["persist", new Uint8Array(JOB_RESULT_MAX_BYTES + 1).fill(1)]]),
    );
    await assert.rejects(
      readJobResult(jobdata),
      (error) =>
        error instanceof RangeError &&
        /"persist" .* is larger than 65536 bytes/.test(error.message),
    );
    // Up to the limit is read whole.
    await writeFatImage(
      jobdata,
      "JOBDATA",
      new Map([["persist", new Uint8Array(JOB_RESULT_MAX_BYTES).fill(1)]]),
    );
    assert.equal(
      (await readJobResult(jobdata)).persist?.length,
      JOB_RESULT_MAX_BYTES,
    );
  });
});

/**
 * Rewrites the FAT12 of `image` as a hostile guest could: the directory
 * entry of `name` (8.3, padded) claims 4 GiB, and its clusters from the
 * first one on form a cycle of `cycle` clusters.
 */
async function craftLoopingFile(image: string, name: string, cycle: number) {
  const bytes = await Deno.readFile(image);
  const view = new DataView(bytes.buffer);
  const sector = view.getUint16(11, true);
  const reserved = view.getUint16(14, true);
  const fats = bytes[16]!;
  const rootEntries = view.getUint16(17, true);
  const fatSectors = view.getUint16(22, true);
  const root = (reserved + fats * fatSectors) * sector;
  const setFat = (cluster: number, next: number) => {
    for (let fat = 0; fat < fats; fat++) {
      const at = (reserved + fat * fatSectors) * sector +
        Math.floor(cluster * 3 / 2);
      const word = view.getUint16(at, true);
      view.setUint16(
        at,
        cluster % 2 ? (word & 0x000f) | (next << 4) : (word & 0xf000) | next,
        true,
      );
    }
  };
  const wanted = new TextEncoder().encode(name);
  for (let i = 0; i < rootEntries; i++) {
    const entry = root + i * 32;
    if (!wanted.every((b, j) => bytes[entry + j] === b)) continue;
    const first = view.getUint16(entry + 26, true);
    view.setUint32(entry + 28, 0xffff_fff0, true);
    for (let c = first; c < first + cycle; c++) {
      setFat(c, c + 1 < first + cycle ? c + 1 : first);
    }
    await Deno.writeFile(image, bytes);
    return;
  }
  throw new Error(`No entry ${name} in ${image}`);
}

Deno.test("readJobResult() refuses a crafted JOBDATA whose persist claims 4 GiB in a cluster loop", async () => {
  await withDir(async (dir) => {
    const jobdata = join(dir, "jobdata.img");
    await writeFatImage(
      jobdata,
      "JOBDATA",
      new Map([["persist", bytes("token\n")], ["exit-code", bytes("0\n")]]),
    );
    await craftLoopingFile(jobdata, "PERSIST    ", 50);
    await assert.rejects(readJobResult(jobdata), RangeError);
  });
});

Deno.test("readFatFile() gives up after timeoutMs", async () => {
  await withDir(async (dir) => {
    // A FIFO nobody writes to: mcopy waits for its first bytes forever.
    const image = join(dir, "stuck.img");
    await runChecked("mkfifo", [image]);
    // Without the timeout, end the wait after 5 s so that the test fails
    // rather than hangs (a read-write open of a FIFO does not block).
    const guard = setTimeout(() => {
      Deno.openSync(image, { read: true, write: true }).close();
    }, 5_000);
    try {
      await assert.rejects(
        readFatFile(image, "persist", { timeoutMs: 200 }),
        Deno.errors.TimedOut,
      );
    } finally {
      clearTimeout(guard);
    }
  });
});
