import assert from "node:assert/strict";
import { join } from "node:path";
import { withServer } from "../../tests/http.ts";
import { withTempDir } from "../../tests/temp.ts";
import { DownloadError } from "./download.ts";
import {
  type BuildReporter,
  installForgejoRunner,
  installRunner,
} from "./build_debian.ts";

const quiet: BuildReporter = { phase: () => () => {}, download: () => {} };

async function runnerTarball(
  dir: string,
): Promise<{ bytes: Uint8Array; sha256: string }> {
  await Deno.mkdir(join(dir, "release/bin"), { recursive: true });
  await Deno.writeTextFile(
    join(dir, "release/run.sh"),
    "#!/bin/sh\necho runner\n",
    { mode: 0o755 },
  );
  await Deno.writeTextFile(join(dir, "release/bin/Runner.Listener"), "binary");
  const tar = await new Deno.Command("tar", {
    args: ["-czf", join(dir, "runner.tar.gz"), "-C", join(dir, "release"), "."],
  }).output();
  assert.ok(tar.success);
  const bytes = await Deno.readFile(join(dir, "runner.tar.gz"));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  const sha256 = Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  return { bytes, sha256 };
}

const PATH = "/v2.320.0/actions-runner-linux-x64-2.320.0.tar.gz";

Deno.test("installRunner() downloads, checks and unpacks the runner for user runner", async () => {
  await withTempDir(async (dir) => {
    const { bytes, sha256 } = await runnerTarball(dir);
    const root = join(dir, "root");
    await Deno.mkdir(join(root, "home/runner"), { recursive: true });
    await withServer({ [PATH]: bytes }, async (url) => {
      await installRunner(root, dir, {
        version: "2.320.0",
        sha256,
        url: `${url}/`,
      }, { reporter: quiet });
    });
    const runSh = join(root, "home/runner/actions-runner/run.sh");
    assert.equal(await Deno.readTextFile(runSh), "#!/bin/sh\necho runner\n");
    assert.equal((await Deno.stat(runSh)).mode! & 0o111, 0o111);
    if (Deno.uid() === 0) assert.equal((await Deno.stat(runSh)).uid, 1001);
    // The tarball is gone once unpacked.
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(),
      [
        "release",
        "root",
        "runner.tar.gz",
      ],
    );
  });
});

Deno.test("installRunner() refuses a tarball that does not match its sha256", async () => {
  await withTempDir(async (dir) => {
    const { bytes } = await runnerTarball(dir);
    const root = join(dir, "root");
    await Deno.mkdir(root);
    await withServer({ [PATH]: bytes }, async (url) => {
      await assert.rejects(
        installRunner(root, dir, {
          version: "2.320.0",
          sha256: "0".repeat(64),
          url,
        }, { reporter: quiet }),
        (error: unknown) => {
          assert.ok(error instanceof DownloadError);
          assert.match(
            error.message,
            /does not match its sha256: expected 0{64}, got [0-9a-f]{64}$/,
          );
          return true;
        },
      );
      await assert.rejects(
        installRunner(root, dir, {
          version: "2.999.0",
          sha256: "0".repeat(64),
          url,
        }, { reporter: quiet }),
        /HTTP 404/,
      );
    });
    assert.deepEqual(await Array.fromAsync(Deno.readDir(root)), []);
    const names = (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name);
    assert.ok(
      !names.some((name) =>
        name.endsWith(".part") || name.startsWith("actions-runner")
      ),
    );
  });
});

Deno.test("installRunner() refuses a version that is not one", async () => {
  await assert.rejects(
    installRunner("/nonexistent", "/nonexistent", {
      version: "../../x",
      sha256: "0".repeat(64),
      url: "http://127.0.0.1:1",
    }, {
      reporter: quiet,
    }),
    /Runner version "..\/..\/x" is not a version like 2.320.0/,
  );
});

Deno.test("installForgejoRunner() puts the checked binary at /usr/local/bin/forgejo-runner", async () => {
  await withTempDir(async (dir) => {
    const bytes = new TextEncoder().encode("#!/bin/sh\necho forgejo-runner\n");
    const sha256 = Array.from(
      new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    const root = join(dir, "root");
    await Deno.mkdir(root);
    const path = "/v12.8.2/forgejo-runner-12.8.2-linux-amd64";
    await withServer({ [path]: bytes }, async (url) => {
      await assert.rejects(
        installForgejoRunner(root, dir, {
          version: "12.8.2",
          sha256: "0".repeat(64),
          url,
        }, { reporter: quiet }),
        /does not match its sha256/,
      );
      assert.deepEqual(await Array.fromAsync(Deno.readDir(root)), []);
      await installForgejoRunner(root, dir, {
        version: "12.8.2",
        sha256,
        url: `${url}/`,
      }, { reporter: quiet });
    });
    const binary = join(root, "usr/local/bin/forgejo-runner");
    assert.deepEqual(await Deno.readFile(binary), bytes);
    assert.equal((await Deno.stat(binary)).mode! & 0o777, 0o755);
    // The download is gone once installed.
    assert.deepEqual(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      ["root"],
    );
  });
  await assert.rejects(
    installForgejoRunner("/nonexistent", "/nonexistent", {
      version: "v12",
      sha256: "0".repeat(64),
      url: "http://127.0.0.1:1",
    }, { reporter: quiet }),
    /forgejo-runner version "v12" is not a version like 12.8.2/,
  );
});
