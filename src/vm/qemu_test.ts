/**
 * The supervisor against real qemu (TCG): guests that power off by
 * themselves, ignore the power button, or are frozen; QMP on a live VM.
 */

import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { processesUnder } from "../../tests/processes.ts";
import { withTempDir } from "../../tests/temp.ts";
import { testGuestImage } from "../../tests/guest/image.ts";
import { writeConfigDisks } from "../guest/mod.ts";
import { DiskForker } from "../images/mod.ts";
import { buildQemuArgv, kernelCommandLine } from "./argv.ts";
import { extractFile, findKernel } from "./kernel.ts";
import { QemuVm, VmStartError } from "./qemu.ts";
import { QmpCommandError } from "./qmp.ts";

function withDir(body: (dir: string) => Promise<void>): Promise<void> {
  return withTempDir(async (dir) => {
    await body(dir);
    assert.deepEqual(await processesUnder(dir), [], "qemu left running");
  }, "forrest-qemu-");
}

/** A guest that only halts: it never powers off and ignores ACPI. */
async function startHaltingGuest(dir: string): Promise<QemuVm> {
  const firmware = new Uint8Array(64 * 1024);
  firmware.set([0xfa, 0xf4, 0xeb, 0xfd], 0xfff0); // cli; hlt; jmp back to hlt
  await Deno.writeFile(join(dir, "halt.bin"), firmware);
  return await QemuVm.start({
    argv: [
      "-nodefaults",
      "-display",
      "none",
      "-machine",
      "q35,accel=tcg",
      "-bios",
      "halt.bin",
      "-chardev",
      "socket,id=qmp,path=qmp.sock,server=on,wait=off",
      "-mon",
      "chardev=qmp,mode=control",
    ],
    cwd: dir,
    qmpSocket: join(dir, "qmp.sock"),
  });
}

/** The Linux test guest running `job`, as exec would start it. */
async function startLinuxGuest(dir: string, job: string): Promise<QemuVm> {
  const image = await testGuestImage();
  const fork = await new DiskForker().fork(image, join(dir, "disk"), {
    clone: "auto",
  });
  await writeConfigDisks(
    { cidata: join(dir, "cidata.img"), jobdata: join(dir, "jobdata.img") },
    { cloudInit: new Map(), jobConfig: new Map([["job.sh", job]]) },
  );
  const kernel = (await findKernel(image))!;
  await extractFile(image, kernel.kernel, join(dir, "vmlinuz"));
  await extractFile(image, kernel.initrd!, join(dir, "initrd.img"));
  const argv = buildQemuArgv({
    accel: "tcg",
    cpus: 1,
    ram: 512 * 1024 ** 2,
    files: {
      disk: basename(fork.path),
      diskFormat: fork.format,
      cidata: "cidata.img",
      jobdata: "jobdata.img",
      log: "log.txt",
      shellSocket: "shell.sock",
      qmpSocket: "qmp.sock",
      output: "output.txt",
    },
    boot: {
      kind: "kernel",
      kernel: "vmlinuz",
      initrd: "initrd.img",
      append: kernelCommandLine("tcg"),
    },
    network: { mode: "restricted", forwards: [] },
    shared: [],
  });
  return await QemuVm.start({
    argv,
    cwd: dir,
    qmpSocket: join(dir, "qmp.sock"),
  });
}

Deno.test("QemuVm sees a guest power itself off", async () => {
  await withDir(async (dir) => {
    const vm = await startLinuxGuest(dir, "echo done\n");
    const exit = await vm.exited;
    assert.equal(exit.code, 0);
    assert.equal(exit.guestShutdown, true);
    assert.equal(exit.stoppedBy, undefined);
    assert.equal(await Deno.readTextFile(join(dir, "output.txt")), "done\n");
    assert.equal(await vm.stop(), undefined); // nothing left to stop
  });
});

Deno.test("QemuVm answers QMP commands while the guest runs", async () => {
  await withDir(async (dir) => {
    const vm = await startHaltingGuest(dir);
    try {
      assert.deepEqual(await vm.qmp.execute("query-status"), {
        status: "running",
        singlestep: false,
        running: true,
      });
      await assert.rejects(
        vm.qmp.execute("no-such-command"),
        (error: unknown) => {
          assert.ok(error instanceof QmpCommandError);
          assert.equal(error.errorClass, "CommandNotFound");
          return true;
        },
      );
    } finally {
      await vm.stop({ powerdownTimeout: 0 });
    }
  });
});

Deno.test("QemuVm.stop() quits a guest that ignores the power button", async () => {
  await withDir(async (dir) => {
    const vm = await startHaltingGuest(dir);
    assert.equal(await vm.stop({ powerdownTimeout: 500 }), "quit");
    const exit = await vm.exited;
    assert.equal(exit.stoppedBy, "quit");
    assert.equal(exit.guestShutdown, false);
  });
});

Deno.test("QemuVm.stop() kills a qemu that does not answer", async () => {
  await withDir(async (dir) => {
    const vm = await startHaltingGuest(dir);
    Deno.kill(vm.pid, "SIGSTOP"); // frozen: neither QMP nor the guest answers
    const step = await vm.stop({ powerdownTimeout: 200, quitTimeout: 200 });
    assert.equal(step, "kill");
    assert.equal((await vm.exited).signal, "SIGKILL");
  });
});

Deno.test("QemuVm.start() reports qemu's own message when qemu cannot start", async () => {
  await withDir(async (dir) => {
    await assert.rejects(
      QemuVm.start({
        argv: [
          "-nodefaults",
          "-display",
          "none",
          "-machine",
          "no-such-machine",
        ],
        cwd: dir,
        qmpSocket: join(dir, "qmp.sock"),
      }),
      (error: unknown) => {
        assert.ok(error instanceof VmStartError);
        assert.match(
          error.message,
          /^qemu exited at start: .*unsupported machine type/i,
        );
        return true;
      },
    );
  });
});
