/**
 * The qemu command line, as a pure function of what the VM should be. Every
 * device and option is decided here, so that it can be read and tested as
 * data; the supervisor only runs it.
 */

export type Accelerator = "kvm" | "tcg";

export type Boot =
  /** Firmware (SeaBIOS) boots the disk, as distribution cloud images need. */
  | { readonly kind: "firmware" }
  /** qemu loads the kernel itself: no bootloader, seconds faster. */
  | {
    readonly kind: "kernel";
    readonly kernel: string;
    readonly initrd: string | undefined;
    readonly append: string;
  };

/** A guest connection to 10.0.2.100:PORT that reaches a host address. */
export interface GuestForward {
  readonly guestPort: number;
  readonly hostAddress: string;
  readonly hostPort: number;
}

/**
 * "user": the outside world over IPv4 and IPv6, nothing of the host but the
 * forwards. "restricted": nothing but the forwards. Both run qemu in a network
 * namespace of its own (launch/guest_network.ts), where the user network's
 * host address (10.0.2.100 there) leads to a loopback that holds only the
 * forwards.
 * "unsafe-host": qemu's user network in the host's namespace, as the original
 * has it: 10.0.2.2 is the host's loopback. Only when asked for by name.
 */
export const NETWORK_MODES = ["user", "restricted", "unsafe-host"] as const;
export type NetworkMode = typeof NETWORK_MODES[number];

export interface Network {
  readonly mode: NetworkMode;
  readonly forwards: readonly GuestForward[];
}

/** Whether the mode runs qemu in a network namespace of its own. */
export function isIsolated(
  mode: NetworkMode,
): mode is Exclude<NetworkMode, "unsafe-host"> {
  return mode !== "unsafe-host";
}

export interface Share {
  readonly path: string;
  readonly tag: string;
  readonly writable: boolean;
}

/** A virtio-net card on a VDE switch, beside the user network. */
export interface VdeNic {
  /** The switch's control socket (folder), as `vde_switch -sock` names it. */
  readonly socket: string;
  /** Locally administered unicast, "02:…" style (mac_pool.ts). */
  readonly mac: string;
}

/** Files of a run directory that qemu uses; qemu runs with it as its cwd. */
export interface VmFiles {
  readonly disk: string;
  readonly diskFormat: "raw" | "qcow2";
  readonly cidata: string;
  /**
   * JOBDATA, attached at start; undefined when it comes later, hot-plugged
   * into JOBDATA_PORT (product.md §13).
   */
  readonly jobdata: string | undefined;
  /** First serial port: the boot log. */
  readonly log: string;
  /**
   * Second serial port: a root shell, as a listening Unix socket. Sockets
   * are absolute paths outside the run directory (run/socket_dir.ts).
   */
  readonly shellSocket: string;
  readonly qmpSocket: string;
  /** The job's own output, from the virtio serial port "forrest.output". */
  readonly output: string;
}

/**
 * How qemu writes the run's disk. "host": through the host's page cache
 * (qemu's default). "direct": O_DIRECT, so the host does not cache what the
 * guest caches already, and guest flushes are not passed on: a run's disk
 * is thrown away or fsynced before it is persisted.
 */
export type DiskCache = "host" | "direct";

export interface QemuArgvOptions {
  readonly accel: Accelerator;
  readonly cpus: number;
  /** Bytes. */
  readonly ram: number;
  readonly files: VmFiles;
  readonly boot: Boot;
  readonly network: Network;
  readonly shared: readonly Share[];
  /** Extra network cards, in config order. */
  readonly nics?: readonly VdeNic[];
  /** The run disk's cache mode; "host" when undefined. */
  readonly diskCache?: DiskCache;
  /** A TPM 2.0 backed by the swtpm whose control socket this is. */
  readonly tpmSocket?: string | undefined;
  /**
   * Start with the CPUs stopped (`-S`), for a `cont` over QMP once what the
   * guest may reach is in place.
   */
  readonly paused?: boolean;
  /**
   * Gives the guest the FORREST_READY port, which it opens once it waits
   * for its job (a VSERPORT_CHANGE event over QMP).
   */
  readonly readyPort?: boolean;
}

/**
 * The user network card's MAC (qemu's default for a first card, made
 * explicit): images tell it from extra cards by it.
 */
export const UPLINK_MAC = "52:54:00:12:34:56";

/** Where a guest reaches its forwards. */
export const FORWARD_ADDRESS = "10.0.2.100";

/** The guest name of the virtio serial port that carries the job's output. */
export const OUTPUT_PORT_NAME = "forrest.output";

/** The guest name of the port whose opening says "booted, waiting for JOBDATA". */
export const READY_PORT_NAME = "forrest.ready";
/** The qemu id of that port's device, as VSERPORT_CHANGE events name it. */
export const READY_PORT_ID = "forrest-ready";

/**
 * The PCIe root port a later JOBDATA is hot-plugged into: q35's root bus
 * takes no hot-plugged devices.
 */
export const JOBDATA_PORT = "jobdata-port";

const MiB = 1024 * 1024;

/** Arguments for qemu-system-x86_64 (without the program name). */
export function buildQemuArgv(options: QemuArgvOptions): string[] {
  const { files } = options;
  const argv = [
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-machine",
    `q35,accel=${options.accel}`,
    "-cpu",
    options.accel === "kvm" ? "host" : "max",
    "-m",
    `${Math.max(1, Math.floor(options.ram / MiB))}M`,
    "-smp",
    String(options.cpus),
    // A reboot ends the VM: jobs are one-shot, and a guest that panics must
    // not loop.
    "-no-reboot",
    ...drive("disk", files.disk, files.diskFormat, false, options.diskCache),
    ...drive("cidata", files.cidata, "raw", true),
    ...(files.jobdata === undefined
      ? ["-device", `pcie-root-port,id=${JOBDATA_PORT},chassis=1`]
      : drive("jobdata", files.jobdata, "raw", false)),
    "-device",
    "virtio-rng-pci",
    ...network(options.network),
    "-chardev",
    `file,id=log,path=${files.log}`,
    "-serial",
    "chardev:log",
    "-chardev",
    `socket,id=shell,path=${
      escapeOption(files.shellSocket)
    },server=on,wait=off`,
    "-serial",
    "chardev:shell",
    "-chardev",
    `socket,id=qmp,path=${escapeOption(files.qmpSocket)},server=on,wait=off`,
    "-mon",
    "chardev=qmp,mode=control",
    "-device",
    "virtio-serial-pci,id=serial0",
    "-chardev",
    `file,id=output,path=${files.output}`,
    "-device",
    `virtserialport,bus=serial0.0,chardev=output,name=${OUTPUT_PORT_NAME}`,
  ];
  if (options.readyPort) {
    argv.push(
      "-chardev",
      "null,id=ready",
      "-device",
      `virtserialport,bus=serial0.0,chardev=ready,name=${READY_PORT_NAME},id=${READY_PORT_ID}`,
    );
  }
  options.shared.forEach((share, index) => {
    argv.push(
      "-virtfs",
      [
        "local",
        `id=share${index}`,
        `path=${escapeOption(share.path)}`,
        `mount_tag=${share.tag}`,
        "security_model=none",
        `readonly=${share.writable ? "off" : "on"}`,
      ].join(","),
    );
  });
  (options.nics ?? []).forEach((nic, index) => {
    argv.push(
      "-netdev",
      `vde,id=nic${index},sock=${escapeOption(nic.socket)}`,
      "-device",
      `virtio-net-pci,netdev=nic${index},mac=${nic.mac}`,
    );
  });
  if (options.tpmSocket !== undefined) {
    argv.push(
      "-chardev",
      `socket,id=tpm,path=${escapeOption(options.tpmSocket)}`,
      "-tpmdev",
      "emulator,id=tpm0,chardev=tpm",
      "-device",
      "tpm-tis,tpmdev=tpm0",
    );
  }
  if (options.boot.kind === "firmware") {
    // Debian trixie's cloud images loop between SeaBIOS and GRUB without a
    // display adapter (the original's commit 0845734).
    argv.push("-device", "VGA,vgamem_mb=4");
  }
  if (options.boot.kind === "kernel") {
    argv.push("-kernel", options.boot.kernel, "-append", options.boot.append);
    if (options.boot.initrd !== undefined) {
      argv.push("-initrd", options.boot.initrd);
    }
  }
  if (options.paused) argv.push("-S");
  return argv;
}

function drive(
  id: string,
  file: string,
  format: "raw" | "qcow2",
  readOnly: boolean,
  cache: DiskCache = "host",
): string[] {
  const options = [
    "if=none",
    `id=${id}`,
    `file=${escapeOption(file)}`,
    `format=${format}`,
    // Space the guest frees is given back to the host file system.
    "discard=unmap",
    "detect-zeroes=unmap",
  ];
  if (readOnly) options.push("readonly=on");
  if (cache === "direct") {
    options.push("cache.direct=on", "cache.no-flush=on");
  }
  return ["-drive", options.join(","), "-device", `virtio-blk-pci,drive=${id}`];
}

/**
 * qemu's user network (slirp). In a namespace of its own it needs no
 * restrict=on and no guestfwd: what it can reach is the namespace's, and the
 * forwards listen on the namespace's loopback (launch/guest_network.ts),
 * which slirp maps 10.0.2.100 to, each connection on its own. In the host's
 * namespace ("unsafe-host") the forwards are guestfwd rules.
 */
function network(net: Network): string[] {
  const options = ["user", "id=net0", "ipv4=on", "ipv6=on"];
  if (isIsolated(net.mode)) {
    // slirp maps its host address, and only that, to the loopback: made
    // 10.0.2.100 (also the gateway), it leads to the forwards.
    options.push(`host=${FORWARD_ADDRESS}`);
  } else {
    for (const forward of net.forwards) {
      options.push(
        `guestfwd=tcp:${FORWARD_ADDRESS}:${forward.guestPort}-tcp:${forward.hostAddress}:${forward.hostPort}`,
      );
    }
  }
  return [
    "-netdev",
    options.join(","),
    "-device",
    `virtio-net-pci,netdev=net0,mac=${UPLINK_MAC}`,
  ];
}

/** qemu option values escape a comma by doubling it. */
function escapeOption(value: string): string {
  return value.replaceAll(",", ",,");
}

/**
 * Drivers for q35 hardware no job uses (its SATA controller, watchdog,
 * SMBus, PS/2 mouse, PC speaker) and what -cpu max makes the kernel load
 * (AMD's crypto coprocessor, wireless regulation): probing them costs
 * seconds of boot under TCG.
 */
const UNUSED_DRIVERS = [
  "ahci",
  "psmouse",
  "pcspkr",
  "iTCO_wdt",
  "i2c_i801",
  "lpc_ich",
  "ccp",
  "cfg80211",
];

/** Nested virtualization: of use to jobs under KVM, never under TCG. */
const KVM_DRIVERS = ["kvm_amd", "kvm_intel"];

/**
 * The kernel command line for direct boot of a Forrest image: root on the
 * first virtio disk, the console on the first serial port (log.txt), and a
 * panic powers off rather than hangs (with -no-reboot).
 */
export function kernelCommandLine(
  accel: Accelerator,
  extra: readonly string[] = [],
): string {
  const unused = accel === "tcg"
    ? [...UNUSED_DRIVERS, ...KVM_DRIVERS]
    : UNUSED_DRIVERS;
  return [
    "root=/dev/vda",
    "rw",
    "rootfstype=ext4",
    "console=ttyS0",
    "panic=-1",
    `modprobe.blacklist=${unused.join(",")}`,
    ...extra,
  ]
    .join(" ");
}
