import assert from "node:assert/strict";
import { join } from "node:path";
import { runForrest } from "./cli.ts";
import { withTempDir } from "./temp.ts";

async function sparseFile(
  path: string,
  size: number,
  data: number,
): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  const file = await Deno.open(path, { write: true, create: true });
  await file.write(new Uint8Array(data).fill(1));
  await file.truncate(size);
  file.close();
}

Deno.test("forrest image list shows src, machine and broken images with their bases", async () => {
  // A short base_dir: the config refuses one too deep for run sockets.
  await withTempDir(async (base) => {
    await sparseFile(
      join(base, "images/debian-bookworm.img"),
      4 * 1024 ** 3,
      1024 * 1024,
    );
    await sparseFile(join(base, "images/.build-x/half.img"), 1024, 1024); // a build under way
    await sparseFile(
      join(base, "machines/acme/images/debian-base.img"),
      4 * 1024 ** 3,
      2 * 1024 * 1024,
    );
    await sparseFile(
      join(base, "machines/acme/app/build.img"),
      8 * 1024 ** 3,
      4096,
    );
    await sparseFile(
      join(base, "machines/acme/app/build.img.broken"),
      8 * 1024 ** 3,
      4096,
    );
    await sparseFile(
      join(base, "machines/acme/app/.build.img.tmp-1234abcd"),
      10,
      10,
    );
    const config = join(base, "forrest.toml");
    await Deno.writeTextFile(
      config,
      `[host]\nbase_dir = "${base}"\nram = "8G"\n` +
        `[repositories.acme.images.machines.debian-base]\nbase_image = "images/debian-bookworm.img"\n` +
        `[repositories.acme.app.machines.build]\nbase_machine = "acme/images/debian-base"\n`,
    );

    const table = await runForrest(["image", "list", "-c", config]);
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.trimEnd().split("\n").map((line) =>
      line.split(/\s{2,}/)
    );
    assert.deepEqual(
      rows.map((row) => [row[0], row[1], row[3], row[4], row[5]]),
      [
        ["IMAGE", "KIND", "SIZE", "AGE", "DERIVES FROM"],
        ["images/debian-bookworm.img", "src", "4G", "0m", "-"],
        [
          "machines/acme/app/build.img",
          "machine",
          "8G",
          "0m",
          "machine acme/images/debian-base",
        ],
        [
          "machines/acme/app/build.img.broken",
          "broken",
          "8G",
          "0m",
          "machine acme/images/debian-base",
        ],
        [
          "machines/acme/images/debian-base.img",
          "machine",
          "4G",
          "0m",
          `image ${base}/images/debian-bookworm.img`,
        ],
      ],
    );

    const json = await runForrest([
      "image",
      "list",
      "--base-dir",
      base,
      "--json",
    ]);
    const images = JSON.parse(json.stdout);
    assert.equal(images.length, 4);
    assert.equal(
      images[0].sizeOnDisk >= 1024 * 1024 &&
        images[0].sizeOnDisk < 2 * 1024 * 1024,
      true,
    );
    assert.equal(images[0].size, 4 * 1024 ** 3);
    assert.equal(images[1].derivesFrom, null); // no config given
  }, "fl-");
});

Deno.test("forrest image list says when there is nothing yet", async () => {
  await withTempDir(async (base) => {
    const result = await runForrest(["image", "list", "--base-dir", base]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      `No images in ${base} yet (forrest image build debian makes one)\n`,
    );
  });
});

Deno.test("forrest image list says what each image was built from: inside it, or beside a cloud image", async () => {
  await withTempDir(async (base) => {
    // An image as image build oci leaves it: the record in its root.
    const root = join(base, "root");
    const record = {
      kind: "oci",
      source: "docker://ghcr.io/acme/ci:2",
      digest: `sha256:${"ab12".repeat(16)}`,
      distribution: "Debian GNU/Linux 12 (bookworm)",
      builtAt: new Date(Date.now() - 3 * 3600_000).toISOString(),
    };
    await Deno.mkdir(join(root, "usr/local/lib/forrest"), { recursive: true });
    await Deno.writeTextFile(
      join(root, "usr/local/lib/forrest/build.json"),
      JSON.stringify(record),
    );
    await Deno.mkdir(join(base, "images"));
    const oci = join(base, "images/oci-ci-2.img");
    const mkfs = await new Deno.Command("mkfs.ext4", {
      args: ["-q", "-d", root, oci, "8M"],
    }).output();
    assert.ok(mkfs.success);
    // A machine image persisted from it carries its root's record.
    await Deno.mkdir(join(base, "machines/acme/app"), { recursive: true });
    await Deno.copyFile(oci, join(base, "machines/acme/app/build.img"));
    // A converted cloud image (no ext4 at its start): the hidden file.
    await sparseFile(join(base, "images/cloud.img"), 1024 ** 3, 4096);
    await Deno.writeTextFile(
      join(base, "images/.cloud.img.build.json"),
      JSON.stringify({
        kind: "debian",
        release: "trixie",
        method: "cloud",
        builtAt: new Date().toISOString(),
      }),
    );
    // One Forrest did not build, and one with a broken record.
    await sparseFile(join(base, "images/mine.img"), 1024 ** 2, 4096);
    await sparseFile(join(base, "images/odd.img"), 1024 ** 2, 4096);
    await Deno.writeTextFile(join(base, "images/.odd.img.build.json"), "{oops");

    const table = await runForrest(["image", "list", "--base-dir", base]);
    assert.equal(table.code, 0, table.stderr);
    const rows = table.stdout.trimEnd().split("\n").map((line) =>
      line.split(/\s{2,}/)
    );
    assert.deepEqual(rows.map((row) => [row[0], row[6], row[7]]), [
      ["IMAGE", "BUILT FROM", "BUILT"],
      ["images/cloud.img", "debian trixie cloud image", "0m"],
      ["images/mine.img", "-", "-"],
      [
        "images/oci-ci-2.img",
        "docker://ghcr.io/acme/ci:2 (sha256:ab12ab12ab12, Debian GNU/Linux 12 (bookworm))",
        "3h",
      ],
      ["images/odd.img", "-", "-"],
      [
        "machines/acme/app/build.img",
        "docker://ghcr.io/acme/ci:2 (sha256:ab12ab12ab12, Debian GNU/Linux 12 (bookworm))",
        "3h",
      ],
    ]);
    const json = JSON.parse(
      (await runForrest(["image", "list", "--base-dir", base, "--json"]))
        .stdout,
    );
    assert.deepEqual(json[2].build, record);
    assert.equal(json[1].build, null);
  });
});
