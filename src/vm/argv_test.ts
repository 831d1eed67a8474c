import assert from "node:assert/strict";
import {
  buildQemuArgv,
  kernelCommandLine,
  type QemuArgvOptions,
} from "./argv.ts";

const FILES = {
  disk: "disk.img",
  diskFormat: "raw",
  cidata: "cidata.img",
  jobdata: "jobdata.img",
  log: "log.txt",
  shellSocket: "shell.sock",
  qmpSocket: "qmp.sock",
  output: "output.txt",
} as const;

const BASE: QemuArgvOptions = {
  accel: "tcg",
  cpus: 2,
  ram: 4 * 1024 ** 3,
  files: FILES,
  boot: { kind: "firmware" },
  network: { mode: "user", forwards: [] },
  shared: [],
};

/** The value after each occurrence of `flag`. */
function values(argv: string[], flag: string): string[] {
  return argv.flatMap((arg, i) => arg === flag ? [argv[i + 1]!] : []);
}

Deno.test("buildQemuArgv() describes the whole VM for firmware boot", () => {
  assert.deepEqual(buildQemuArgv(BASE), [
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-machine",
    "q35,accel=tcg",
    "-cpu",
    "max",
    "-m",
    "4096M",
    "-smp",
    "2",
    "-no-reboot",
    "-drive",
    "if=none,id=disk,file=disk.img,format=raw,discard=unmap,detect-zeroes=unmap",
    "-device",
    "virtio-blk-pci,drive=disk",
    "-drive",
    "if=none,id=cidata,file=cidata.img,format=raw,discard=unmap,detect-zeroes=unmap,readonly=on",
    "-device",
    "virtio-blk-pci,drive=cidata",
    "-drive",
    "if=none,id=jobdata,file=jobdata.img,format=raw,discard=unmap,detect-zeroes=unmap",
    "-device",
    "virtio-blk-pci,drive=jobdata",
    "-device",
    "virtio-rng-pci",
    "-netdev",
    "user,id=net0,ipv4=on,ipv6=on,host=10.0.2.100",
    "-device",
    "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56",
    "-chardev",
    "file,id=log,path=log.txt",
    "-serial",
    "chardev:log",
    "-chardev",
    "socket,id=shell,path=shell.sock,server=on,wait=off",
    "-serial",
    "chardev:shell",
    "-chardev",
    "socket,id=qmp,path=qmp.sock,server=on,wait=off",
    "-mon",
    "chardev=qmp,mode=control",
    "-device",
    "virtio-serial-pci,id=serial0",
    "-chardev",
    "file,id=output,path=output.txt",
    "-device",
    "virtserialport,bus=serial0.0,chardev=output,name=forrest.output",
    "-device",
    "VGA,vgamem_mb=4",
  ]);
});

Deno.test("buildQemuArgv() uses the host CPU under KVM", () => {
  const argv = buildQemuArgv({ ...BASE, accel: "kvm" });
  assert.deepEqual(values(argv, "-machine"), ["q35,accel=kvm"]);
  assert.deepEqual(values(argv, "-cpu"), ["host"]);
});

Deno.test("buildQemuArgv() gives whole MiB of RAM, at least one", () => {
  assert.deepEqual(
    values(buildQemuArgv({ ...BASE, ram: 1536 * 1024 ** 2 }), "-m"),
    ["1536M"],
  );
  assert.deepEqual(values(buildQemuArgv({ ...BASE, ram: 1000 }), "-m"), ["1M"]);
});

Deno.test("buildQemuArgv() boots a kernel directly, with or without an initrd", () => {
  const append = kernelCommandLine("kvm");
  const withInitrd = buildQemuArgv({
    ...BASE,
    boot: { kind: "kernel", kernel: "vmlinuz", initrd: "initrd.img", append },
  });
  assert.deepEqual(values(withInitrd, "-kernel"), ["vmlinuz"]);
  assert.deepEqual(values(withInitrd, "-initrd"), ["initrd.img"]);
  assert.deepEqual(values(withInitrd, "-append"), [
    "root=/dev/vda rw rootfstype=ext4 console=ttyS0 panic=-1 " +
    "modprobe.blacklist=ahci,psmouse,pcspkr,iTCO_wdt,i2c_i801,lpc_ich,ccp,cfg80211",
  ]);
  const without = buildQemuArgv({
    ...BASE,
    boot: { kind: "kernel", kernel: "vmlinuz", initrd: undefined, append },
  });
  assert.deepEqual(values(without, "-initrd"), []);
});

const FORWARDS = [
  { guestPort: 80, hostAddress: "127.0.0.1", hostPort: 8080 },
  { guestPort: 443, hostAddress: "127.0.0.1", hostPort: 8443 },
];

Deno.test("buildQemuArgv() leaves isolation and forwards to the namespace when isolated", () => {
  for (const mode of ["user", "restricted"] as const) {
    const argv = buildQemuArgv({
      ...BASE,
      network: { mode, forwards: FORWARDS },
      paused: true,
    });
    // slirp's host address, which it maps to the namespace's loopback
    // where the forwards listen; no restrict=on, no guestfwd.
    assert.deepEqual(values(argv, "-netdev"), [
      "user,id=net0,ipv4=on,ipv6=on,host=10.0.2.100",
    ]);
    assert.equal(argv.at(-1), "-S");
  }
});

Deno.test("buildQemuArgv() keeps qemu's guestfwd rules for unsafe-host", () => {
  const argv = buildQemuArgv({
    ...BASE,
    network: { mode: "unsafe-host", forwards: FORWARDS },
  });
  assert.deepEqual(values(argv, "-netdev"), [
    "user,id=net0,ipv4=on,ipv6=on," +
    "guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080," +
    "guestfwd=tcp:10.0.2.100:443-tcp:127.0.0.1:8443",
  ]);
  assert.ok(!argv.includes("-S"));
});

Deno.test("buildQemuArgv() shares folders read-only unless writable", () => {
  const argv = buildQemuArgv({
    ...BASE,
    shared: [
      { path: "/srv/cache", tag: "cache", writable: true },
      { path: "/srv/blobs", tag: "blobs", writable: false },
    ],
  });
  assert.deepEqual(values(argv, "-virtfs"), [
    "local,id=share0,path=/srv/cache,mount_tag=cache,security_model=none,readonly=off",
    "local,id=share1,path=/srv/blobs,mount_tag=blobs,security_model=none,readonly=on",
  ]);
});

Deno.test("buildQemuArgv() escapes commas in paths and uses qcow2 forks as such", () => {
  const argv = buildQemuArgv({
    ...BASE,
    files: { ...FILES, disk: "disk,1.qcow2", diskFormat: "qcow2" },
    shared: [{ path: "/srv/a,b", tag: "ab", writable: false }],
  });
  assert.equal(
    values(argv, "-drive")[0],
    "if=none,id=disk,file=disk,,1.qcow2,format=qcow2,discard=unmap,detect-zeroes=unmap",
  );
  assert.match(values(argv, "-virtfs")[0]!, /path=\/srv\/a,,b,/);
});

Deno.test("buildQemuArgv() puts each extra NIC on its VDE switch with its MAC", () => {
  const argv = buildQemuArgv({
    ...BASE,
    nics: [
      { socket: "/run/vde/lab.ctl", mac: "02:00:00:00:00:01" },
      { socket: "/run/vde,2", mac: "06:12:34:56:78:9a" },
    ],
  });
  assert.deepEqual(values(argv, "-netdev").slice(1), [
    "vde,id=nic0,sock=/run/vde/lab.ctl",
    "vde,id=nic1,sock=/run/vde,,2",
  ]);
  assert.deepEqual(
    values(argv, "-device").filter((d) => d.includes("netdev=nic")),
    [
      "virtio-net-pci,netdev=nic0,mac=02:00:00:00:00:01",
      "virtio-net-pci,netdev=nic1,mac=06:12:34:56:78:9a",
    ],
  );
});

Deno.test("buildQemuArgv() gives a TPM 2.0 on swtpm's socket only when asked", () => {
  assert.deepEqual(values(buildQemuArgv(BASE), "-tpmdev"), []);
  const argv = buildQemuArgv({ ...BASE, tpmSocket: "/s/ab,c/tpm.sock" });
  assert.deepEqual(values(argv, "-tpmdev"), ["emulator,id=tpm0,chardev=tpm"]);
  assert.ok(
    values(argv, "-chardev").includes(
      "socket,id=tpm,path=/s/ab,,c/tpm.sock",
    ),
  );
  assert.ok(values(argv, "-device").includes("tpm-tis,tpmdev=tpm0"));
});

Deno.test("buildQemuArgv() adds a display adapter only for firmware boot", () => {
  const vga = (argv: string[]) =>
    values(argv, "-device").filter((d) => d.startsWith("VGA"));
  assert.deepEqual(vga(buildQemuArgv(BASE)), ["VGA,vgamem_mb=4"]);
  const kernel = buildQemuArgv({
    ...BASE,
    boot: { kind: "kernel", kernel: "k", initrd: undefined, append: "" },
  });
  assert.deepEqual(vga(kernel), []);
});

Deno.test("buildQemuArgv() bypasses the host's page cache for the run disk only when asked", () => {
  const drives = (argv: string[]) => values(argv, "-drive");
  assert.ok(drives(buildQemuArgv(BASE)).every((d) => !d.includes("cache.")));
  const [disk, ...config] = drives(
    buildQemuArgv({ ...BASE, diskCache: "direct" }),
  );
  assert.match(
    disk!,
    /^if=none,id=disk,.*,cache\.direct=on,cache\.no-flush=on$/,
  );
  assert.ok(config.every((d) => !d.includes("cache.")));
});

Deno.test("kernelCommandLine() keeps nested virtualization for KVM guests only", () => {
  const blacklist = (line: string) =>
    /modprobe\.blacklist=(\S+)/.exec(line)?.[1]?.split(",") ?? [];
  assert.ok(!blacklist(kernelCommandLine("kvm")).includes("kvm_amd"));
  assert.ok(blacklist(kernelCommandLine("tcg")).includes("kvm_amd"));
  assert.ok(blacklist(kernelCommandLine("tcg")).includes("kvm_intel"));
  assert.ok(blacklist(kernelCommandLine("tcg")).includes("ahci"));
});

Deno.test("buildQemuArgv() leaves a port for a later JOBDATA, and the ready port", () => {
  const argv = buildQemuArgv({
    ...BASE,
    files: { ...FILES, jobdata: undefined },
    readyPort: true,
  });
  assert.ok(!argv.some((arg) => arg.includes("jobdata.img")));
  assert.ok(
    values(argv, "-device").includes(
      "pcie-root-port,id=jobdata-port,chassis=1",
    ),
  );
  assert.deepEqual(
    values(argv, "-device").filter((d) => d.includes("forrest.ready")),
    [
      "virtserialport,bus=serial0.0,chardev=ready,name=forrest.ready,id=forrest-ready",
    ],
  );
  assert.ok(values(argv, "-chardev").includes("null,id=ready"));
  // With JOBDATA at boot: no empty port, no ready port.
  const now = buildQemuArgv(BASE);
  assert.ok(!now.some((arg) => arg.includes("jobdata-port")));
  assert.ok(!now.some((arg) => arg.includes("forrest.ready")));
});
