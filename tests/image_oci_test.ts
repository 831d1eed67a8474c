/**
 * `forrest image build oci`: a container image made in the test (no
 * registry) becomes a Forrest image that runs a job as runner (uid 1001);
 * archives of both kinds are read; what cannot be made bootable is refused
 * with what it is, and nothing is left behind.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runForrest } from "./cli.ts";
import {
  debianMinbaseTar,
  DOCKER_JOB_OUTPUT,
  ociLayout,
  rootTar,
  runDockerJob,
  skopeoCopy,
  withRegistry,
} from "./oci.ts";
import { withTempDir } from "./temp.ts";

function build(dir: string, source: string, ...more: string[]) {
  return runForrest([
    "image",
    "build",
    "oci",
    source,
    "--base-dir",
    dir,
    "--accel",
    "tcg",
    ...more,
  ], { cwd: dir });
}

async function leftovers(dir: string): Promise<string[]> {
  try {
    return (await Array.fromAsync(Deno.readDir(join(dir, "images"))))
      .map((e) => e.name).sort();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw error;
  }
}

Deno.test("image build oci: archives of both kinds are read; a distribution it cannot boot is refused by name", async () => {
  await withTempDir(async (dir) => {
    await rootTar(dir, join(dir, "layer.tar"), {
      "bin/sh": { copyOf: "/bin/sh", mode: 0o755 },
      "etc/os-release":
        'NAME="Alpine Linux"\nID=alpine\nPRETTY_NAME="Alpine Linux v3.20"\n',
    });
    await ociLayout(join(dir, "layout"), "tiny", join(dir, "layer.tar"));
    await skopeoCopy(
      "oci:" + join(dir, "layout:tiny"),
      `oci-archive:${join(dir, "tiny.tar")}`,
    );
    await skopeoCopy(
      "oci:" + join(dir, "layout:tiny"),
      `docker-archive:${join(dir, "tiny-docker.tar")}:tiny:1`,
    );
    for (
      const source of [
        "oci:layout:tiny",
        "oci-archive:tiny.tar",
        "docker-archive:tiny-docker.tar",
      ]
    ) {
      const result = await build(dir, source);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `forrest: (oci|oci-archive|docker-archive):${dir}/.* is Alpine Linux v3\\.20 \\(ID=alpine\\): ` +
            "Forrest makes images of Debian and Ubuntu",
        ),
        `${source}: ${result.stderr}`,
      );
      assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
    }
    assert.deepEqual(await leftovers(dir), [], "no work folder is left");
  });
});

Deno.test("image build oci: a docker:// source is pulled from a registry", async () => {
  await withTempDir(async (dir) => {
    await rootTar(dir, join(dir, "layer.tar"), {
      "bin/sh": { copyOf: "/bin/sh", mode: 0o755 },
      "etc/os-release": 'ID=alpine\nPRETTY_NAME="Alpine Linux v3.20"\n',
    });
    await ociLayout(join(dir, "layout"), "tiny", join(dir, "layer.tar"));
    await withRegistry(dir, async (host, registriesConf) => {
      await skopeoCopy(
        `oci:${join(dir, "layout")}:tiny`,
        `docker://${host}/acme/tiny:3`,
        ["--dest-tls-verify=false"],
      );
      const result = await runForrest([
        "image",
        "build",
        "oci",
        `docker://${host}/acme/tiny:3`,
        "--base-dir",
        dir,
        "--registries-conf",
        registriesConf,
      ]);
      assert.equal(result.code, 1, result.stderr);
      assert.match(
        result.stderr,
        new RegExp(
          `forrest: copying docker://${host}/acme/tiny:3 with skopeo: done in`,
        ),
      );
      assert.match(
        result.stderr,
        new RegExp(
          `forrest: docker://${host}/acme/tiny:3 is Alpine Linux v3\\.20 \\(ID=alpine\\)`,
        ),
      );
    });
    assert.deepEqual(await leftovers(dir), []);
  });
});

Deno.test("image build oci: an image without os-release, a bad SOURCE, Debian's options", async () => {
  await withTempDir(async (dir) => {
    await rootTar(dir, join(dir, "layer.tar"), {
      "bin/sh": { copyOf: "/bin/sh", mode: 0o755 },
    });
    await ociLayout(join(dir, "layout"), "bare", join(dir, "layer.tar"));
    const bare = await build(dir, "oci:layout:bare");
    assert.equal(bare.code, 1);
    assert.match(
      bare.stderr,
      /has no \/etc\/os-release or \/usr\/lib\/os-release: Forrest cannot tell its distribution/,
    );
    const bad = await build(dir, "layout:bare");
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /SOURCE must be docker:\/\/REF, oci:DIR\[:TAG\], oci-archive:FILE or docker-archive:FILE, found "layout:bare"/,
    );
    const missing = await runForrest([
      "image",
      "build",
      "oci",
      "--base-dir",
      dir,
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /image build oci needs a SOURCE/);
    const release = await build(dir, "oci:layout:bare", "--release", "trixie");
    assert.equal(release.code, 2);
    assert.match(release.stderr, /image build oci takes no --release/);
    const debian = await runForrest([
      "image",
      "build",
      "debian",
      "oci:layout:bare",
      "--base-dir",
      dir,
    ]);
    assert.equal(debian.code, 2);
    assert.match(debian.stderr, /image build debian takes no SOURCE/);
    const nothing = await build(dir, "oci:nowhere:x");
    assert.equal(nothing.code, 1);
    assert.match(nothing.stderr, /skopeo/);
    assert.deepEqual(await leftovers(dir), []);
  });
});

Deno.test("image build oci --with docker: a Debian container image (minbase: no systemd, no kernel) runs a job as runner, and the job runs containers", async () => {
  await withTempDir(async (dir) => {
    await debianMinbaseTar(join(dir, "rootfs.tar"));
    await ociLayout(join(dir, "layout"), "bookworm", join(dir, "rootfs.tar"));
    await Deno.remove(join(dir, "rootfs.tar"));
    const result = await build(
      dir,
      "oci:layout:bookworm",
      "--size",
      "3G",
      "--with",
      "docker",
    );
    assert.equal(result.code, 0, result.stderr);
    const image = join(dir, "images", "oci-layout-bookworm.img");
    assert.match(
      result.stderr,
      new RegExp(
        `forrest: built ${image} \\(3G\\) from oci:${dir}/layout:bookworm ` +
          "\\(Debian GNU/Linux 12 \\(bookworm\\), sha256:[0-9a-f]{64}\\) in",
      ),
    );
    assert.deepEqual(await leftovers(dir), ["oci-layout-bookworm.img"]);
    // image list says where it came from: the source and its digest.
    const listed = JSON.parse(
      (await runForrest(["image", "list", "--base-dir", dir, "--json"])).stdout,
    );
    assert.deepEqual(
      {
        ...listed[0].build,
        builtAt: typeof listed[0].build.builtAt,
      },
      {
        kind: "oci",
        source: `oci:${dir}/layout:bookworm`,
        digest: /sha256:[0-9a-f]{64}/.exec(result.stderr)![0],
        distribution: "Debian GNU/Linux 12 (bookworm)",
        builtAt: "string",
      },
    );

    const job = await runDockerJob(dir, image);
    assert.equal(job.code, 0, job.stdout + job.stderr);
    assert.equal(job.stdout, `runner\n1001\nsudo\n${DOCKER_JOB_OUTPUT}`);
  });
});
