/**
 * `forrest image build debian` paths that need no full build: the cloud
 * method against a local server (the test guest stands in for Debian's
 * cloud image), and a build interrupted while mmdebstrap runs.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runForrest, startForrest, StreamText } from "./cli.ts";
import { testGuestImage } from "./guest/image.ts";
import { processesUnder } from "./processes.ts";
import { withServer } from "./http.ts";
import { withTempDir } from "./temp.ts";

async function sha512(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-512", new Uint8Array(bytes));
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

const NAME = "debian-12-generic-amd64.qcow2";

async function cloudImage(dir: string): Promise<Uint8Array> {
  const qcow2 = join(dir, "cloud.qcow2");
  const convert = await new Deno.Command("qemu-img", {
    args: ["convert", "-O", "qcow2", await testGuestImage(), qcow2],
  }).output();
  assert.ok(convert.success);
  return await Deno.readFile(qcow2);
}

function build(dir: string, url: string, release = "bookworm") {
  return runForrest([
    "image",
    "build",
    "debian",
    "--release",
    release,
    "--method",
    "cloud",
    "--cloud-url",
    url,
    "--out",
    join(dir, "images/cloud.img"),
    "--size",
    "256M",
    "--base-dir",
    dir,
    "--accel",
    "tcg",
  ]);
}

async function leftovers(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(join(dir, "images")))).map((e) =>
    e.name
  ).sort();
}

Deno.test("image build --method cloud checks, converts, smoke-boots and publishes", async () => {
  await withTempDir(async (dir) => {
    const qcow2 = await cloudImage(dir);
    const sums = `${"0".repeat(128)}  other-file.qcow2\n${await sha512(
      qcow2,
    )}  ${NAME}\n`;
    await withServer({
      [`/bookworm/latest/${NAME}`]: qcow2,
      "/bookworm/latest/SHA512SUMS": new TextEncoder().encode(sums),
    }, async (url) => {
      const result = await build(dir, url);
      assert.equal(result.code, 0, result.stderr);
      assert.match(
        result.stderr,
        /forrest: downloading debian-12-generic-amd64\.qcow2: done in/,
      );
      assert.match(
        result.stderr,
        /forrest: smoke boot: running `true` in the new image: done in/,
      );
    });
    const image = join(dir, "images/cloud.img");
    assert.equal((await Deno.stat(image)).size, 256 * 1024 * 1024);
    // The record of where it came from is beside it (hidden).
    assert.deepEqual(await leftovers(dir), [
      ".cloud.img.build.json",
      "cloud.img",
    ]);
    const listed = await runForrest(["image", "list", "--base-dir", dir]);
    assert.match(
      listed.stdout,
      /images\/cloud\.img .* debian bookworm cloud image +0m\n/,
    );
  });
});

Deno.test("image build --method cloud --release trixie takes Debian 13's generic image", async () => {
  await withTempDir(async (dir) => {
    const qcow2 = await cloudImage(dir);
    const name = "debian-13-generic-amd64.qcow2";
    await withServer({
      [`/trixie/latest/${name}`]: qcow2,
      "/trixie/latest/SHA512SUMS": new TextEncoder().encode(
        `${await sha512(qcow2)}  ${name}\n`,
      ),
    }, async (url) => {
      const result = await build(dir, url, "trixie");
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /downloading debian-13-generic-amd64\.qcow2/);
    });
    assert.deepEqual(await leftovers(dir), [
      ".cloud.img.build.json",
      "cloud.img",
    ]);
  });
});

Deno.test("image build --method cloud publishes nothing when the checksum is wrong", async () => {
  await withTempDir(async (dir) => {
    const qcow2 = await cloudImage(dir);
    await Deno.mkdir(join(dir, "images"));
    await withServer({
      [`/bookworm/latest/${NAME}`]: qcow2,
      "/bookworm/latest/SHA512SUMS": new TextEncoder().encode(
        `${"ab".repeat(64)}  ${NAME}\n`,
      ),
    }, async (url) => {
      const result = await build(dir, url);
      assert.equal(result.code, 1);
      assert.match(
        result.stderr,
        /debian-12-generic-amd64\.qcow2 does not match its sha512: expected (ab){64}, got /,
      );
    });
    assert.deepEqual(await leftovers(dir), []);
  });
});

Deno.test("image build interrupted during mmdebstrap leaves no image, work folder, mount or process", async () => {
  await withTempDir(async (dir) => {
    const child = startForrest([
      "image",
      "build",
      "debian",
      "--out",
      join(dir, "images/debian.img"),
      "--base-dir",
      dir,
      "--accel",
      "tcg",
    ]);
    await child.stdin.close();
    const stderr = new StreamText(child.stderr);
    await stderr.until("installing Debian");
    // Let mmdebstrap get going (downloading, unpacking, mounting).
    await new Promise((resolve) => setTimeout(resolve, 4_000));
    child.kill("SIGINT");
    const seen = await stderr.rest();
    await child.stdout.cancel();
    const status = await child.status;
    assert.equal(status.code, 130, seen);
    assert.match(
      seen,
      /forrest: interrupted; nothing was published and the work folder is gone/,
    );
    assert.deepEqual(await leftovers(dir), []);
    const mounts = await Deno.readTextFile("/proc/self/mounts");
    assert.ok(!mounts.includes(dir), "a mount is left");
    assert.deepEqual(await processesUnder(dir), []);
  });
});

Deno.test("forrest exec interrupted while it builds its first image leaves nothing behind", async () => {
  await withTempDir(async (dir) => {
    const child = startForrest(["exec", "--accel", "tcg", "--", "true"], {
      env: { XDG_DATA_HOME: dir },
    });
    await child.stdin.close();
    const stderr = new StreamText(child.stderr);
    await stderr.until("installing Debian");
    assert.match(stderr.text, /does not exist yet: building it first/);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    child.kill("SIGINT");
    const seen = await stderr.rest();
    await child.stdout.cancel();
    assert.equal((await child.status).code, 130, seen);
    assert.match(
      seen,
      /forrest: interrupted by SIGINT before the VM started; nothing was left behind/,
    );
    assert.deepEqual(await leftovers(join(dir, "forrest")), []);
    assert.ok(
      !(await Deno.readTextFile("/proc/self/mounts")).includes(dir),
      "a mount is left",
    );
    assert.deepEqual(await processesUnder(dir), []);
  });
});
