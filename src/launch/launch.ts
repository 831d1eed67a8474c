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
import {
  type SetupTemplateContent,
  usesRunnerIdentity,
  writeConfigDisks,
  writeJobData,
} from "../guest/mod.ts";
import {
  type CloneSetting,
  DiskForker,
  type Fork,
  GUEST_FEATURES_PATH,
} from "../images/mod.ts";
import { RUN_FILES, type RunDir } from "../run/mod.ts";
import {
  type Boot,
  buildQemuArgv,
  type DiskCache,
  extractFile,
  findKernel,
  HelperProcess,
  type HelperRecord,
  HelperStartError,
  isExtFileSystem,
  isIsolated,
  isReadyEvent,
  kernelCommandLine,
  MacPool,
  type Network,
  plugJobData,
  QemuVm,
  readImageText,
  resolveAccelerator,
  type Share,
  VmStartError,
} from "../vm/mod.ts";
import type { NetworkInterfaceConfig } from "../config/mod.ts";
import { pathExists, runChecked } from "../host/mod.ts";
import { startTpm } from "./tpm.ts";
import { cachedKernel, linkOrCopy } from "./kernel_cache.ts";
import { LOG_LIMIT, LogGuard } from "./log_guard.ts";
import {
  hostAddressesToBlock,
  namespaceCommand,
  NETWORK_FILES,
  pastaArgs,
  type PastaArgsOptions,
} from "./guest_network.ts";

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
  /** Extra network cards on VDE switches. */
  readonly networkInterfaces?: readonly NetworkInterfaceConfig[];
  /** The run disk's cache mode; diskCacheFor() the run directory by default. */
  readonly diskCache?: DiskCache;
  /** The machine's TPM state, when it has one (copied for the run). */
  readonly tpmState?: string | undefined;
  /** The setup template, placeholders already filled in. */
  readonly template: SetupTemplateContent;
  /**
   * Where kernels read out of images are kept for later starts
   * (kernel_cache.ts); read out for each start when undefined.
   */
  readonly kernelCache?: string;
  /**
   * Boot without JOBDATA: the template's `job-config/` comes later, through
   * Launched.giveJobData() (the image must have the `late-jobdata`
   * feature; see lateJobDataSupported()).
   */
  readonly lateJobData?: boolean;
}

/** What a configured machine adds to its VM beyond CPUs, RAM and disk. */
export type MachineDevices = Pick<
  LaunchOptions,
  "shared" | "networkInterfaces" | "tpmState"
>;

export interface Launched {
  readonly vm: QemuVm;
  readonly fork: Fork;
  /** performance.now() when qemu was started. */
  readonly startedAt: number;
  /**
   * With lateJobData: true once the guest waits for its JOBDATA, false
   * when the VM ended first. Without: false when the VM ends.
   */
  readonly ready: Promise<boolean>;
  /**
   * With lateJobData: writes JOBDATA from the rendered template and plugs
   * it into the running guest. Once only.
   */
  readonly giveJobData: (template: SetupTemplateContent) => Promise<void>;
}

const forker = new DiskForker();
/**
 * One pool per switch, for the daemon's life: a DHCP server on a switch sees
 * the same few addresses again, each one on its own network only.
 */
const macPools = new Map<string, MacPool>();

/** The run disk's cache mode by file system (device number). */
const diskCaches = new Map<number, Promise<DiskCache>>();

function macPool(socket: string): MacPool {
  let pool = macPools.get(socket);
  if (!pool) macPools.set(socket, pool = new MacPool());
  return pool;
}

/**
 * Starts the VM. On failure nothing is left running; the run directory is
 * the caller's to clean up.
 */
export async function launchVm(options: LaunchOptions): Promise<Launched> {
  const log = getLogger(["forrest", "vm"]);
  const { run } = options;
  const late = options.lateJobData === true;
  // Independent steps, each a few processes: at once, and all ended
  // before a failure is thrown (the caller then removes the run's files).
  const [fork, , bootFiles] = await allEnded<[Fork, void, BootFiles]>([
    forker.fork(
      options.image,
      join(run.path, RUN_FILES.diskStem),
      { clone: options.clone, size: options.disk },
    ),
    writeConfigDisks(
      {
        cidata: run.file("cidata"),
        jobdata: late ? undefined : run.file("jobdata"),
      },
      options.template,
    ),
    // A TPM's guest stalls booted through PVH (no firmware starts the TPM;
    // tests/serve_recovery_test.ts): the compressed kernel there.
    chooseBoot(
      options.image,
      run,
      options.kernelCache,
      options.tpmState === undefined,
    ),
  ]);
  // After the image is known to exist: probing KVM may warn.
  const accel = await resolveAccelerator(options.accel);
  const boot: Boot = bootFiles.kind === "kernel"
    ? { ...bootFiles, append: kernelCommandLine(accel) }
    : bootFiles;
  log.debug("Forked {image} to {fork} ({method})", {
    image: options.image,
    fork: fork.path,
    method: fork.method,
  });
  const { network } = options;
  const isolated = isIsolated(network.mode);
  if (!isolated) {
    log.warn(
      'Machine {runner} has network "unsafe-host": its guest can reach every service on the host\'s loopback at 10.0.2.2',
      { runner: options.runner },
    );
  }
  for (const nic of options.networkInterfaces ?? []) {
    if (!(await pathExists(nic.path))) {
      throw new VmStartError(
        `The VDE switch ${nic.path} does not exist (start it with vde_switch --sock ${nic.path})`,
      );
    }
  }
  const helpers: HelperRecord[] = [];
  // swtpm first: qemu connects to it as it starts.
  // Recorded as soon as it runs: a crash before qemu starts must find it.
  const tpm = options.tpmState === undefined ? undefined : await startTpm(
    options.tpmState,
    run,
    (record) => writeRecord(run, options, undefined, [record]),
  );
  const nics = (options.networkInterfaces ?? []).map((nic) => ({
    socket: nic.path,
    mac: macPool(nic.path).take(),
  }));
  const giveBack = {
    stop: () => {
      // Last first, so that the next VM's cards get them in the same order.
      for (const nic of nics.splice(0).reverse()) {
        macPool(nic.socket).give(nic.mac);
      }
      return Promise.resolve();
    },
  };
  let vm: QemuVm;
  let startedAt: number;
  let ready: Promise<boolean>;
  if (tpm) helpers.push(tpm.record);
  try {
    const argv = buildQemuArgv({
      accel,
      cpus: options.cpus,
      ram: options.ram,
      files: {
        ...run.vmFiles(basename(fork.path), fork.format),
        ...(late ? { jobdata: undefined } : {}),
      },
      readyPort: late,
      boot,
      network,
      shared: options.shared,
      nics,
      diskCache: options.diskCache ?? await diskCacheFor(run.path),
      tpmSocket: tpm ? run.socket("tpm") : undefined,
      // Its CPUs wait until the network helper is in place.
      paused: isolated,
    });
    log.debug("Starting qemu-system-x86_64 {argv}", { argv: argv.join(" ") });
    startedAt = performance.now();
    vm = await startQemu(argv, run, isolated);
    // Listened for at once: the guest opens the port seconds later at best.
    ready = new Promise<boolean>((resolve) => {
      const unsubscribe = vm.qmp.onEvent((event) => {
        if (isReadyEvent(event)) resolve(true);
      });
      vm.exited.then(() => resolve(false), () => resolve(false))
        .finally(unsubscribe);
    });
  } catch (error) {
    await tpm?.stop();
    await giveBack.stop();
    throw error;
  }
  if (tpm) vm.attach(tpm);
  vm.attach(giveBack);
  vm.attach(
    new LogGuard(
      { stop: () => vm.stop({ powerdownTimeout: 0, quitTimeout: 5_000 }) },
      [run.file("log"), run.file("output")],
      {
        limit: LOG_LIMIT,
        interval: 2_000,
        onExceeded: (file, size) =>
          log.error(
            "Stopping {runner}: its guest wrote {size} bytes to {file}, more than {limit}",
            { runner: options.runner, size, file, limit: LOG_LIMIT },
          ),
      },
    ),
  );
  try {
    await writeRecord(run, options, vm.pid, helpers);
    if (isIsolated(network.mode)) {
      const pasta = await startNetworkHelper(
        vm.pid,
        { mode: network.mode, forwards: network.forwards },
        run,
      );
      vm.attach(pasta);
      helpers.push(pasta.record);
      await writeRecord(run, options, vm.pid, helpers);
      await vm.qmp.execute("cont");
    }
  } catch (error) {
    // Without its record a crash could not find this qemu; without its
    // network it must not run: stop it.
    await vm.stop({ powerdownTimeout: 0, quitTimeout: 5_000 });
    throw error;
  }
  let given = false;
  const giveJobData = async (template: SetupTemplateContent) => {
    if (!late || given) throw new Error("JOBDATA was given already");
    given = true;
    const jobdata = run.file("jobdata");
    await writeJobData(jobdata, template);
    await plugJobData(vm.qmp, jobdata);
  };
  return { vm, fork, startedAt, ready, giveJobData };
}

/** Promise.all that lets every promise end before it throws a failure. */
async function allEnded<T extends readonly unknown[]>(
  promises: { [K in keyof T]: Promise<T[K]> },
): Promise<T> {
  const results = await Promise.allSettled(promises);
  for (const result of results) {
    if (result.status === "rejected") throw result.reason;
  }
  return results.map((r) =>
    (r as PromiseFulfilledResult<unknown>).value
  ) as unknown as T;
}

/** Where a base_dir keeps kernels read out of images (kernel_cache.ts). */
export function kernelCacheDir(baseDir: string): string {
  return join(baseDir, "cache", "kernels");
}

/**
 * Whether a run of this image can get its JOBDATA after boot: the image
 * says so (images of `forrest image build debian` since product.md §13),
 * and the template's CIDATA needs no runner identity (its `cloud-init/`
 * is read at boot).
 */
export async function lateJobDataSupported(
  image: string,
  cloudInit: SetupTemplateContent["cloudInit"],
): Promise<boolean> {
  if (usesRunnerIdentity(cloudInit)) return false;
  if (!(await isExtFileSystem(image))) return false;
  const features = await readImageText(image, `/${GUEST_FEATURES_PATH}`);
  return features?.split(/\s+/).includes("late-jobdata") ?? false;
}

/**
 * O_DIRECT for the run disk where it is safe: measured with
 * bench/disk_cache_bench.ts, a job writing 2 GiB grew the host's page cache
 * by 86 MiB instead of 2.2 GiB (the guest caches what it writes already)
 * and took no longer (90 s against 96 s, medians under TCG). Only on ext4
 * and xfs: btrfs before Linux 6.14 reports false checksum errors when a
 * guest changes a buffer during a direct write, and tmpfs (or ZFS before
 * 2.3) has no O_DIRECT at all. Elsewhere, the host's page cache.
 */
function diskCacheFor(dir: string): Promise<DiskCache> {
  return Deno.stat(dir).then(({ dev }) => {
    // Asked once per file system, not at every start.
    let cache = diskCaches.get(dev);
    if (!cache) {
      cache = runChecked("stat", ["-f", "-c", "%T", dir]).then((type) =>
        // stat names ext4 "ext2/ext3" (one magic number for all three).
        ["ext2/ext3", "xfs"].includes(type.trim()) ? "direct" : "host"
      );
      diskCaches.set(dev, cache);
    }
    return cache;
  });
}

function writeRecord(
  run: RunDir,
  options: LaunchOptions,
  pid: number | undefined,
  helpers: readonly HelperRecord[],
): Promise<void> {
  return run.writeRecord({
    triplet: options.triplet,
    runner: options.runner,
    ...(pid === undefined ? {} : { pid }),
    startedAt: new Date().toISOString(),
    helpers: [...helpers],
  });
}

/**
 * qemu, in namespaces of its own when isolated: `unshare` sets them up and
 * becomes qemu (exec), so the pid is qemu's either way.
 */
async function startQemu(
  argv: string[],
  run: RunDir,
  isolated: boolean,
): Promise<QemuVm> {
  const qemu = ["qemu-system-x86_64", ...argv];
  const [binary, ...args] = isolated
    ? [
      ...namespaceCommand(hostAddressesToBlock(Deno.networkInterfaces())),
      ...qemu,
    ]
    : qemu;
  try {
    return await QemuVm.start({
      argv: args,
      binary: binary!,
      cwd: run.path,
      qmpSocket: run.socket("qmp"),
    });
  } catch (error) {
    if (isolated && error instanceof VmStartError) {
      throw new VmStartError(
        `${error.message} (the guest network needs user namespaces: ` +
          `unshare --user --map-root-user --net must work for Forrest's user)`,
      );
    }
    throw error;
  }
}

/**
 * pasta, joined to qemu's namespaces; ready once it has written its pid
 * file, which it does after its interface and forwards are in place.
 */
function startNetworkHelper(
  pid: number,
  network: Pick<PastaArgsOptions, "mode" | "forwards">,
  run: RunDir,
): Promise<HelperProcess> {
  const pidFile = join(run.path, NETWORK_FILES.pid);
  return HelperProcess.start({
    name: "network",
    binary: "pasta",
    args: pastaArgs({
      ...network,
      pid,
      dir: run.path,
      root: Deno.uid() === 0,
    }),
    cwd: run.path,
    ready: async (_helper, signal) => {
      while (!signal.aborted) {
        const text = await Deno.readTextFile(pidFile).catch(() => "");
        if (text.trim()) return;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
  }).catch(async (error) => {
    if (!(error instanceof HelperStartError)) throw error;
    // pasta says why in its log ("Failed to open tun socket", ...).
    const said = await Deno.readTextFile(join(run.path, NETWORK_FILES.log))
      .then((text) =>
        text.split("\n").filter((line) => line && !/info:/.test(line))
          .slice(-2).join("; ")
      ).catch(() => "");
    throw new HelperStartError(
      `The guest network did not start: ${error.message}${
        said ? `: ${said}` : ""
      }`,
    );
  });
}

/**
 * Direct kernel boot for a bare ext4 image (kernel and initrd copied out of
 * it into the run directory), firmware boot for anything else.
 */
async function chooseBoot(
  image: string,
  run: RunDir,
  cache: string | undefined,
  pvh: boolean,
): Promise<BootFiles> {
  if (!(await isExtFileSystem(image))) return { kind: "firmware" };
  const files = await findKernel(image, pvh);
  if (!files) {
    throw new Error(
      `Image "${image}" is a bare ext4 file system with no /boot/vmlinuz-*: it cannot boot`,
    );
  }
  if (cache === undefined) {
    await extractFile(image, files.kernel, run.file("kernel"));
    if (files.initrd) {
      await extractFile(image, files.initrd, run.file("initrd"));
    }
  } else {
    const cached = await cachedKernel(cache, image, files);
    await linkOrCopy(cached.kernel, run.file("kernel"));
    if (cached.initrd) await linkOrCopy(cached.initrd, run.file("initrd"));
  }
  return {
    kind: "kernel",
    kernel: RUN_FILES.kernel,
    initrd: files.initrd ? RUN_FILES.initrd : undefined,
  };
}

/** A boot before its kernel command line (which depends on the accelerator). */
type BootFiles =
  | Extract<Boot, { kind: "firmware" }>
  | Omit<Extract<Boot, { kind: "kernel" }>, "append">;
