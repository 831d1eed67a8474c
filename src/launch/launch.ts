/**
 * Starting one VM in a run directory: fork the image, write the config
 * disks, pick the boot (direct kernel for Forrest's images, firmware for
 * cloud images), build the qemu command line and start the supervisor.
 * `forrest exec` and `forrest serve` start every VM through here; what they
 * do around it (following output, runners, persistence rules) is theirs.
 */

import { basename, join } from "node:path";
import { getLogger } from "@logtape/logtape";
import type { Accel, Triplet } from "../config/mod.ts";
import { type SetupTemplateContent, writeConfigDisks } from "../guest/mod.ts";
import { type CloneSetting, DiskForker, type Fork } from "../images/mod.ts";
import { RUN_FILES, type RunDir } from "../run/mod.ts";
import {
  type Boot,
  buildQemuArgv,
  extractFile,
  findKernel,
  isExtFileSystem,
  kernelCommandLine,
  type Network,
  QemuVm,
  resolveAccelerator,
  type Share,
} from "../vm/mod.ts";

export interface LaunchOptions {
  readonly run: RunDir;
  readonly triplet: Triplet;
  readonly runner: string;
  readonly image: string;
  readonly cpus: number;
  /** Bytes. */
  readonly ram: number;
  /** Bytes to grow the disk to; the image's size when undefined. */
  readonly disk: number | undefined;
  readonly accel: Accel;
  readonly clone: CloneSetting;
  readonly network: Network;
  readonly shared: readonly Share[];
  /** The setup template, placeholders already filled in. */
  readonly template: SetupTemplateContent;
}

export interface Launched {
  readonly vm: QemuVm;
  readonly fork: Fork;
  /** performance.now() when qemu was started. */
  readonly startedAt: number;
}

const forker = new DiskForker();

/**
 * Starts the VM. On failure nothing is left running; the run directory is
 * the caller's to clean up.
 */
export async function launchVm(options: LaunchOptions): Promise<Launched> {
  const log = getLogger(["forrest", "vm"]);
  const { run } = options;
  const fork = await forker.fork(
    options.image,
    join(run.path, RUN_FILES.diskStem),
    { clone: options.clone, size: options.disk },
  );
  log.debug("Forked {image} to {fork} ({method})", {
    image: options.image,
    fork: fork.path,
    method: fork.method,
  });
  await writeConfigDisks(
    { cidata: run.file("cidata"), jobdata: run.file("jobdata") },
    options.template,
  );
  const boot = await chooseBoot(options.image, run);
  const accel = await resolveAccelerator(options.accel);
  const argv = buildQemuArgv({
    accel,
    cpus: options.cpus,
    ram: options.ram,
    files: run.vmFiles(basename(fork.path), fork.format),
    boot,
    network: options.network,
    shared: options.shared,
  });
  log.debug("Starting qemu-system-x86_64 {argv}", { argv: argv.join(" ") });
  const startedAt = performance.now();
  const vm = await QemuVm.start({
    argv,
    cwd: run.path,
    qmpSocket: run.socket("qmp"),
  });
  try {
    await run.writeRecord({
      triplet: options.triplet,
      runner: options.runner,
      pid: vm.pid,
      startedAt: new Date().toISOString(),
    });
  } catch (error) {
    // Without its record a crash could not find this qemu: stop it.
    await vm.stop({ powerdownTimeout: 0, quitTimeout: 5_000 });
    throw error;
  }
  return { vm, fork, startedAt };
}

/**
 * Direct kernel boot for a bare ext4 image (kernel and initrd copied out of
 * it into the run directory), firmware boot for anything else.
 */
async function chooseBoot(image: string, run: RunDir): Promise<Boot> {
  if (!(await isExtFileSystem(image))) return { kind: "firmware" };
  const files = await findKernel(image);
  if (!files) {
    throw new Error(
      `Image "${image}" is a bare ext4 file system with no /boot/vmlinuz-*: it cannot boot`,
    );
  }
  await extractFile(image, files.kernel, run.file("kernel"));
  if (files.initrd) await extractFile(image, files.initrd, run.file("initrd"));
  return {
    kind: "kernel",
    kernel: RUN_FILES.kernel,
    initrd: files.initrd ? RUN_FILES.initrd : undefined,
    append: kernelCommandLine(),
  };
}
