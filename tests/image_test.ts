/**
 * Images end to end under TCG: the Debian image that `image build` makes,
 * a job that persists its disk, one that cannot, and the next run seeing
 * what the first left.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { pathExists } from "../src/host/mod.ts";
import { execArgs, runForrest } from "./cli.ts";
import { testDebianImage } from "./debian_image.ts";
import { processesUnder } from "./processes.ts";
import { withTempDir } from "./temp.ts";

const image = await testDebianImage();

async function debugfs(command: string): Promise<string> {
  const out = await new Deno.Command("debugfs", {
    args: ["-R", command, image],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  return new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
}

async function sha256(path: string): Promise<string> {
  const out = await new Deno.Command("sha256sum", {
    args: [path],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).split(" ")[0]!;
}

Deno.test("image build debian makes a bare ext4 image with Forrest's guest units and no cloud-init", async () => {
  const info = await debugfs("stat /home/runner");
  assert.match(info, /User:\s+1001\s+Group:\s+1001/);
  // Debian's generic kernel: the cloud kernel has no 9p for shared folders.
  const boot = await debugfs("ls -p /boot");
  assert.match(boot, /vmlinuz-\d[\w.-]*-amd64/);
  assert.match(boot, /initrd\.img-\d[\w.-]*-amd64/);
  assert.doesNotMatch(boot, /cloud-amd64/);
  // The same kernel uncompressed, booted through its PVH entry.
  assert.match(boot, /forrest-vmlinux-\d[\w.-]*-amd64/);
  assert.match(
    await debugfs("cat /usr/local/lib/forrest/features"),
    /^late-jobdata$/m,
  );
  assert.match(
    await debugfs("cat /etc/resolv.conf"),
    /^nameserver 10\.0\.2\.3\n/,
  );
  assert.match(
    await debugfs("cat /usr/local/lib/forrest/mount-shares"),
    /mount -t 9p/,
  );
  assert.match(
    await debugfs("cat /usr/local/lib/forrest/run-job"),
    /runuser -u runner/,
  );
  assert.match(
    await debugfs("ls -p /etc/systemd/system/multi-user.target.wants"),
    /forrest-job\.service/,
  );
  assert.match(await debugfs("stat /usr/bin/cloud-init"), /File not found/);
  assert.match(
    await debugfs("cat /etc/sudoers.d/runner"),
    /runner ALL=\(ALL\) NOPASSWD:ALL/,
  );
});

const TOKEN = "persist-me-0123456789abcdef";

function configFor(base: string): string {
  return `[host]
base_dir = "${base}"
ram = "4G"
accel = "tcg"

[repositories.acme.app]
persistence_token = "${TOKEN}"

[repositories.acme.app.machines.build]
base_image = "${image}"
ram = "2G"
network = "restricted"
`;
}

/** `forrest exec --machine acme/app/build` with the test's config. */
function execMachine(config: string, args: readonly string[]) {
  return runForrest([
    "exec",
    "-c",
    config,
    "--machine",
    "acme/app/build",
    ...args,
  ]);
}

Deno.test("a run that writes the token persists its disk; the next run sees it; one without the token changes nothing", async () => {
  await withTempDir(async (base) => {
    const config = join(base, "forrest.toml");
    await Deno.writeTextFile(config, configFor(base));
    const exec = (script: string) =>
      execMachine(config, ["--", "sh", "-c", script]);
    const machineImage = join(base, "machines/acme/app/build.img");

    const first = await exec(
      `echo first-run > ~/state; echo "${TOKEN}" > ~/config/persist`,
    );
    assert.equal(first.code, 0, first.stderr);
    assert.match(
      first.stderr,
      new RegExp(`forrest: the run's disk is now ${machineImage}`),
    );
    const persisted = await sha256(machineImage);

    const second = await exec(
      "cat ~/state; echo not-a-token > ~/config/persist; echo second > ~/state",
    );
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, "first-run\n");
    assert.match(
      second.stderr,
      /wrote a persist file that does not hold the repository's persistence token/,
    );
    assert.doesNotMatch(second.stderr, new RegExp(TOKEN));
    assert.equal(
      await sha256(machineImage),
      persisted,
      "the image is byte-identical",
    );

    const third = await exec("cat ~/state");
    assert.equal(third.stdout, "first-run\n");
    assert.equal(await sha256(machineImage), persisted);
    assert.deepEqual(await processesUnder(base), []);
    // Only the machine image is left: no runs, no temp files.
    const left = await Array.fromAsync(
      Deno.readDir(join(base, "machines/acme/app")),
    );
    assert.deepEqual(left.map((e) => e.name), ["build.img"]);
  });
});

Deno.test("exec --machine --persist keeps the disk of a command that succeeds", async () => {
  await withTempDir(async (base) => {
    const config = join(base, "forrest.toml");
    await Deno.writeTextFile(config, configFor(base));
    const before = await Deno.stat(image);
    const failing = await execMachine(config, [
      "--persist",
      "--",
      "sh",
      "-c",
      "touch ~/x; exit 1",
    ]);
    assert.equal(failing.code, 1);
    assert.equal(
      await pathExists(join(base, "machines/acme/app/build.img")),
      false,
    );
    const passing = await execMachine(config, [
      "--persist",
      "--",
      "sh",
      "-c",
      "touch ~/x",
    ]);
    assert.equal(passing.code, 0, passing.stderr);
    // The shared base image is never written: a persist replaces the
    // machine's own image only.
    const after = await Deno.stat(image);
    assert.deepEqual([after.mtime, after.size], [before.mtime, before.size]);
    const check = await execMachine(config, ["--", "ls", "x"]);
    assert.equal(check.stdout, "x\n");
  });
});

Deno.test("image build debian --release trixie makes an image that runs a job", async () => {
  const trixie = await testDebianImage([], "trixie");
  await withTempDir(async (base) => {
    const result = await runForrest(execArgs(
      { image: trixie, baseDir: base, network: "restricted" },
      ["--", "sh", "-c", "cat /etc/debian_version; uname -r; id -u"],
    ));
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^13\.\d+\n[\w.+-]+-amd64\n1001\n$/);
    assert.deepEqual(await processesUnder(base), []);
  });
});
