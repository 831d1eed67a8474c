/**
 * `forrest image build debian --with docker`: the guest runs dockerd
 * (started by its socket on first use), and user runner, in group docker,
 * loads an image from a tarball, runs a container and builds an image.
 * The same job runs in an OCI-built image in image_oci_test.ts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runForrest } from "./cli.ts";
import { DOCKER_JOB_OUTPUT, runDockerJob } from "./oci.ts";
import { withTempDir } from "./temp.ts";

Deno.test("image build debian --with docker: a job runs containers as runner, no root needed", async () => {
  await withTempDir(async (dir) => {
    const image = join(dir, "images", "docker.img");
    const build = await runForrest([
      "image",
      "build",
      "debian",
      "--with",
      "docker",
      "--size",
      "3G",
      "--out",
      image,
      "--base-dir",
      dir,
      "--accel",
      "tcg",
    ]);
    assert.equal(build.code, 0, build.stderr);
    const listed = JSON.parse(
      (await runForrest(["image", "list", "--base-dir", dir, "--json"])).stdout,
    );
    assert.deepEqual(
      [listed[0].path, listed[0].build.kind, listed[0].build.release],
      ["images/docker.img", "debian", "bookworm"],
    );
    assert.equal(listed[0].build.method, "debootstrap");
    const job = await runDockerJob(dir, image);
    assert.equal(job.code, 0, job.stdout + job.stderr);
    assert.equal(job.stdout, `runner\n1001\nsudo\n${DOCKER_JOB_OUTPUT}`);
  });
});

Deno.test("image build --with: only what Forrest knows, and not for cloud images", async () => {
  await withTempDir(async (dir) => {
    const unknown = await runForrest([
      "image",
      "build",
      "debian",
      "--with",
      "podman",
      "--base-dir",
      dir,
    ]);
    assert.equal(unknown.code, 2);
    assert.match(
      unknown.stderr,
      /option '--with <feature>' argument 'podman' is invalid\. Allowed choices are docker\./,
    );
    const cloud = await runForrest([
      "image",
      "build",
      "debian",
      "--method",
      "cloud",
      "--with",
      "docker",
      "--base-dir",
      dir,
    ]);
    assert.equal(cloud.code, 2);
    assert.match(cloud.stderr, /--with needs --method debootstrap/);
  });
});
