/**
 * `forrest exec` and `forrest shell` as a user runs them, on the test guest
 * under TCG with restricted networking. After each test: no qemu process,
 * no socket, no disk left behind.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { btrfsUnavailable, withBtrfs } from "./btrfs.ts";
import { execArgs, runForrest, startForrest, StreamText } from "./cli.ts";
import { testGuestImage } from "./guest/image.ts";
import { filesUnder, processesUnder } from "./processes.ts";
import { pathOfLength, withTempDir } from "./temp.ts";
import { RunDir } from "../src/run/mod.ts";

const image = await testGuestImage();

/** A base dir for one test, checked for leftovers and removed afterwards. */
function withBaseDir(body: (base: string) => Promise<void>): Promise<void> {
  return withTempDir(async (base) => {
    await body(base);
    assert.deepEqual(await processesUnder(base), [], "qemu left running");
  }, "forrest-exec-");
}

/** `exec` on the test guest under TCG, without network, in `base`. */
function guestExecArgs(base: string, args: readonly string[]): string[] {
  return execArgs({ image, baseDir: base, network: "restricted" }, args);
}

function exec(base: string, args: string[]) {
  return runForrest(guestExecArgs(base, args));
}

Deno.test("forrest exec prints the command's output and exits with its code", async () => {
  await withBaseDir(async (base) => {
    const result = await exec(base, ["--", "sh", "-c", "echo hello; exit 3"]);
    assert.equal(result.stdout, "hello\n");
    assert.equal(result.code, 3);
    assert.equal(result.stderr, "");
    assert.deepEqual(await filesUnder(base), []);
  });
});

Deno.test("forrest exec runs the command as runner, in its home, without --", async () => {
  await withBaseDir(async (base) => {
    const result = await exec(base, [
      "sh",
      "-c",
      'echo "$(id -un) $(id -u) $PWD"; echo err >&2',
    ]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, "runner 1001 /home/runner\nerr\n");
  });
});

Deno.test("forrest exec grows the disk and shows the boot log with --verbose", async () => {
  await withBaseDir(async (base) => {
    const result = await exec(base, [
      "--disk",
      "512M",
      "--verbose",
      "--",
      "sh",
      "-c",
      "cat /sys/block/vda/size",
    ]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `${(512 * 1024 * 1024) / 512}\n`);
    assert.match(result.stderr, /Linux version \d/);
  });
});

Deno.test("forrest exec stops a hung guest at --timeout and keeps its logs", async () => {
  await withBaseDir(async (base) => {
    const result = await exec(base, [
      "--timeout",
      "3s",
      "--",
      "sh",
      "-c",
      "echo started; sleep 600",
    ]);
    assert.equal(result.code, 124);
    assert.equal(result.stdout, "started\n");
    const runDir = /its logs are in (\S+)/.exec(result.stderr)?.[1];
    assert.match(
      result.stderr,
      /^forrest: timed out after 3s; stopped the VM \(quit\); its logs are in /m,
    );
    assert.ok(runDir?.startsWith(join(base, "runs/local/exec/exec/exec-")));
    const left = await filesUnder(base);
    assert.deepEqual(left.map((f) => f.split("/").pop()), [
      "log.txt",
      "output.txt",
      "run.json",
    ]);
  });
});

Deno.test("forrest exec stops its VM before it exits on SIGTERM and SIGINT", async () => {
  for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
    await withBaseDir(async (base) => {
      const child = startForrest(
        guestExecArgs(base, ["--", "sh", "-c", "echo running; sleep 600"]),
      );
      await child.stdin.close();
      const stdout = new StreamText(child.stdout);
      await stdout.until("running");
      child.kill(signal);
      await stdout.cancel();
      const stderr = await new Response(child.stderr).text();
      const status = await child.status;
      assert.equal(status.code, code, stderr);
      assert.match(
        stderr,
        new RegExp(
          `^forrest: interrupted by ${signal}; stopped the VM \\(quit\\)`,
          "m",
        ),
      );
    });
  }
});

Deno.test("forrest exec --keep keeps the run directory, disk included", async () => {
  await withBaseDir(async (base) => {
    const result = await exec(base, ["--keep", "--", "true"]);
    assert.equal(result.code, 0);
    assert.match(result.stderr, /^forrest: the run directory is kept: /);
    const names = (await filesUnder(base)).map((f) => f.split("/").pop());
    for (
      const name of [
        "cidata.img",
        "jobdata.img",
        "log.txt",
        "run.json",
        "vmlinuz",
      ]
    ) {
      assert.ok(names.includes(name), `${name} kept`);
    }
    assert.ok(names.some((n) => n === "disk.img" || n === "disk.qcow2"));
    // The sockets went with qemu.
    assert.ok(!names.includes("qmp.sock") && !names.includes("shell.sock"));
  });
});

Deno.test("forrest exec rejects bad usage before booting anything", async () => {
  await withBaseDir(async (base) => {
    const run = (...args: string[]) => ["exec", "--base-dir", base, ...args];
    const cases: [string[], RegExp][] = [
      [
        run("--image", image, "--ram", "4g", "--", "true"),
        /^forrest: --ram: Cannot parse size "4g": unit "g" must be upper case: write "4G"\n$/,
      ],
      [
        run("--image", image, "--cpus", "0", "--", "true"),
        /^forrest: --cpus must be a whole number of at least 1, not "0"\n$/,
      ],
      [
        run("--image", image, "--timeout", "5", "--", "true"),
        /^forrest: --timeout: Cannot parse duration "5": missing unit/,
      ],
      [run("--image", image), /^forrest: missing required argument 'command'/],
      [
        run("--image", image, "--machine", "acme/app/build", "--", "true"),
        /^forrest: Give --image or --machine, not both\n$/,
      ],
      [
        run("--image", image, "--persist", "--", "true"),
        /^forrest: --persist needs --machine: it makes the run's disk that machine's image\n$/,
      ],
    ];
    for (const [args, message] of cases) {
      const result = await runForrest(args);
      assert.equal(result.code, 2, args.join(" "));
      assert.match(result.stderr, message);
    }
    assert.deepEqual(await filesUnder(base), []);
  });
});

Deno.test("forrest exec names a missing image and exits 125", async () => {
  await withBaseDir(async (base) => {
    const result = await runForrest([
      "exec",
      "--image",
      join(base, "none.img"),
      "--base-dir",
      base,
      "--",
      "true",
    ]);
    assert.equal(result.code, 125);
    assert.equal(
      result.stderr,
      `forrest: Image "${join(base, "none.img")}" does not exist\n`,
    );
  });
});

const noBtrfs = btrfsUnavailable();
Deno.test({
  name: "forrest exec forks by reflink on btrfs and leaves nothing",
  ignore: noBtrfs !== undefined,
  fn: () =>
    withBtrfs(async (mount) => {
      const local = join(mount, "test.img");
      await Deno.copyFile(image, local);
      const result = await runForrest([
        "exec",
        "--image",
        local,
        "--base-dir",
        join(mount, "base"),
        "--accel",
        "tcg",
        "--network",
        "restricted",
        "--verbose",
        "--log-level",
        "debug",
        "--",
        "sh",
        "-c",
        "echo on btrfs",
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "on btrfs\n");
      assert.match(result.stderr, /Forked .* \("reflink"\)/);
      assert.deepEqual(await processesUnder(mount), []);
      assert.deepEqual(await filesUnder(join(mount, "base")), []);
    }),
});

Deno.test("forrest shell attaches to a running machine's root shell; Ctrl-] detaches", async () => {
  await withBaseDir(async (base) => {
    // A job that waits for the shell to leave a file, then ends.
    const running = exec(base, [
      "--timeout",
      "120s",
      "--",
      "sh",
      "-c",
      "while [ ! -e /tmp/done ]; do sleep 0.1; done; echo released",
    ]);
    let runner: string | undefined;
    for (let i = 0; i < 200 && !runner; i++) {
      const files = await filesUnder(base).catch(() => []);
      runner = files.find((f) => f.endsWith("/run.json"))?.split("/").at(-2);
      if (!runner) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(runner, "the VM started");

    const shell = startForrest(["shell", runner, "--base-dir", base]);
    const writer = shell.stdin.getWriter();
    const encoder = new TextEncoder();
    let seen = "";
    const collecting = (async () => {
      for await (
        const text of shell.stdout.pipeThrough(new TextDecoderStream())
      ) seen += text;
    })();
    /** Waits for `pattern` in the shell's output, typing `line` again now and then. */
    const waitFor = async (pattern: RegExp, line: string) => {
      for (let tick = 0; !pattern.test(seen); tick++) {
        if (tick >= 600) {
          throw new Error(`no ${pattern} from the shell: ${seen}`);
        }
        // Keys typed while the guest's serial port starts up are lost, so
        // ask again until the shell answers.
        if (tick % 20 === 0) await writer.write(encoder.encode(line));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    await waitFor(/\b42\b/, "echo $((6 * 7))\n");
    await waitFor(/\broot\b/, "id -un\n");
    // busybox's prompt asks the terminal for the cursor position and may
    // take typed keys for the answer; a computed marker proves a line ran.
    await waitFor(
      /\btouched 43\b/,
      "touch /tmp/done; echo touched $((42 + 1))\n",
    );
    await writer.write(new Uint8Array([0x1d]));
    await writer.close();
    await collecting;
    const stderr = await new Response(shell.stderr).text();
    const status = await shell.status;
    assert.equal(status.code, 0);
    assert.match(
      stderr,
      new RegExp(
        `^Connected to the root shell of ${runner}; Ctrl-\\] detaches\\.`,
      ),
    );
    assert.match(stderr, /Detached\.\n$/);

    const result = await running;
    assert.equal(result.code, 0);
    assert.equal(result.stdout, "released\n");
  });
});

Deno.test("forrest shell finds a machine whose names are the longest GitHub allows", async () => {
  await withBaseDir(async (temp) => {
    const base = pathOfLength(temp, 60);
    const triplet = {
      scope: {
        kind: "repository" as const,
        owner: "o".repeat(39),
        repo: "r".repeat(100),
      },
      machine: "m".repeat(64),
    };
    const runner = `forrest-${triplet.machine}-0123456789abcdef`;
    // A run directory as serve makes it, with a stand-in for qemu's shell.
    const run = await RunDir.create(base, triplet, runner);
    using listener = Deno.listen({
      transport: "unix",
      path: run.socket("shell"),
    });
    const shell = startForrest(["shell", runner, "--base-dir", base]);
    const conn = await listener.accept();
    const encoder = new TextEncoder();
    const writer = shell.stdin.getWriter();
    await writer.write(encoder.encode("id\n"));
    const typed = new Uint8Array(3);
    assert.equal(await conn.read(typed), 3);
    assert.equal(new TextDecoder().decode(typed), "id\n");
    await conn.write(encoder.encode("uid=0(root)\n"));
    const stdout = shell.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    while (!seen.includes("\n")) seen += (await stdout.read()).value ?? "";
    assert.equal(seen, "uid=0(root)\n");
    await writer.write(new Uint8Array([0x1d]));
    await writer.close();
    await stdout.cancel();
    const [status, stderr] = await Promise.all([
      shell.status,
      new Response(shell.stderr).text(),
    ]);
    conn.close();
    assert.equal(status.code, 0, stderr);
    assert.match(
      stderr,
      new RegExp(`^Connected to the root shell of ${runner}`),
    );
    await run.remove();
  });
});

Deno.test("forrest shell says so when there is no such machine", async () => {
  await withBaseDir(async (base) => {
    const result = await runForrest([
      "shell",
      "forrest-build-none",
      "--base-dir",
      base,
    ]);
    assert.equal(result.code, 2);
    assert.equal(
      result.stderr,
      `forrest: No machine "forrest-build-none" (looked in ${
        join(base, "runs")
      })\n`,
    );
  });
});
