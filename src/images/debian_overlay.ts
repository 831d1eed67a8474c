/**
 * The files `forrest image build debian` adds to the Debian root: Forrest's
 * guest units (product.md §6) and what makes the image boot fast and serve
 * jobs with no cloud-init. Kept as data with explicit modes, so that they
 * are reviewed in one place and need no files beside the binary.
 */

import { READY_PORT_NAME, UPLINK_MAC } from "../vm/mod.ts";

/**
 * Lists what the image's guest side supports, one word a line:
 * `late-jobdata` (it boots without JOBDATA and waits for it, product.md §13).
 */
export const GUEST_FEATURES_PATH = "usr/local/lib/forrest/features";

export interface OverlayFile {
  readonly content: string;
  readonly mode: number;
}

/**
 * Mounts each shared folder (a 9p device; qemu gives its tag) at
 * /mnt/<tag> before the job starts. Permissions are the host folder's; a
 * read-only share refuses writes with EROFS.
 */
export const MOUNT_SHARES = `#!/bin/sh
# Only where qemu gave a 9p device (virtio device 9): loading 9p costs
# about a second of boot under TCG.
# (read, not cat: each process costs tens of ms under TCG, on the job's path)
for dev in /sys/bus/virtio/devices/*; do
  read -r id <"$dev/device" 2>/dev/null || continue
  [ "$id" = 0x0009 ] && modprobe -q 9pnet_virtio && break
done
for dev in /sys/bus/virtio/drivers/9pnet_virtio/virtio*; do
  [ -r "$dev/mount_tag" ] || continue
  tag=$(tr -d '\\000' <"$dev/mount_tag")
  case "$tag" in "" | . | .. | */*) continue ;; esac
  mkdir -p "/mnt/$tag"
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 "$tag" "/mnt/$tag" ||
    echo "forrest: cannot mount shared folder $tag" >&2
done
`;

/** Paths relative to the root; symlinks to /dev/null mask units. */
export const DEBIAN_OVERLAY: Readonly<Record<string, OverlayFile>> = {
  "etc/hostname": { mode: 0o644, content: "forrest\n" },
  // Without systemd-resolved, the host's own name comes from here (sudo
  // looks it up).
  "etc/hosts": {
    mode: 0o644,
    content: "127.0.0.1 localhost\n127.0.1.1 forrest\n" +
      "::1 localhost ip6-localhost ip6-loopback\n",
  },
  "etc/systemd/journald.conf.d/forrest.conf": {
    mode: 0o644,
    content:
      "# A one-job machine: its journal lives in RAM.\n[Journal]\nStorage=volatile\n",
  },
  "etc/fstab": {
    mode: 0o644,
    content:
      "# Forrest boots the kernel with root=/dev/vda; this only sets options.\n" +
      "/dev/vda / ext4 rw,discard,errors=remount-ro 0 1\n",
  },
  "etc/sudoers.d/runner": {
    mode: 0o440,
    content:
      "# Like GitHub's runners: the job may use sudo freely.\nrunner ALL=(ALL) NOPASSWD:ALL\n",
  },
  // The user network's card gets the default route; extra cards (network_interfaces) get addresses but no
  // default route, so that a lab's DHCP server cannot take the job's way out.
  "etc/systemd/network/70-forrest-uplink.network": {
    mode: 0o644,
    content: `[Match]\nMACAddress=${UPLINK_MAC}\n\n[Network]\nDHCP=yes\n`,
  },
  "etc/systemd/network/80-forrest-dhcp.network": {
    mode: 0o644,
    content: "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n\n" +
      "[DHCPv4]\nUseGateway=no\n\n[IPv6AcceptRA]\nUseGateway=no\n",
  },
  // Do not wait two minutes for a link that qemu's NAT always gives at once.
  "etc/systemd/system/systemd-networkd-wait-online.service.d/forrest.conf": {
    mode: 0o644,
    content:
      "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=20\n",
  },
  "etc/systemd/system/serial-getty@ttyS1.service.d/forrest-autologin.conf": {
    mode: 0o644,
    content:
      "# A root shell on the second serial port: forrest shell RUNNER.\n[Service]\n" +
      "ExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200,57600,38400,9600 %I $TERM\n",
  },
  // JOBDATA may come long after boot (product.md §13: a warm machine gets it
  // when a job does, hot-plugged): the mount waits for it without a
  // timeout, and outside local-fs.target, which would hold the whole boot
  // (network, logins, the ready signal) until then.
  "etc/systemd/system/home-runner-config.mount": {
    mode: 0o644,
    content: "[Unit]\nDescription=Forrest job config disk (JOBDATA)\n" +
      "DefaultDependencies=no\nAfter=local-fs.target\n" +
      "Conflicts=umount.target\nBefore=umount.target\n\n" +
      "[Mount]\nWhat=/dev/disk/by-label/JOBDATA\nWhere=/home/runner/config\nType=vfat\n" +
      "Options=uid=1001,gid=1001,umask=077,flush\n",
  },
  "etc/systemd/system/dev-disk-by\\x2dlabel-JOBDATA.device.d/forrest.conf": {
    mode: 0o644,
    content: "[Unit]\nJobRunningTimeoutSec=infinity\n",
  },
  // Opening the port is the signal (qemu reports it over QMP): the guest
  // has booted and its job starts as soon as JOBDATA is there.
  "etc/systemd/system/forrest-ready.service": {
    mode: 0o644,
    content: "[Unit]\nDescription=Tell Forrest the guest waits for its job\n" +
      "After=network-online.target basic.target\nWants=network-online.target\n\n" +
      "[Service]\nType=oneshot\nExecStart=/usr/local/lib/forrest/ready\n\n" +
      "[Install]\nWantedBy=multi-user.target\n",
  },
  "usr/local/lib/forrest/ready": {
    mode: 0o755,
    content: `#!/bin/sh
# Only where Forrest gave the port (not under forrest exec, or an old host).
port=/dev/virtio-ports/${READY_PORT_NAME}
[ -c "$port" ] || exit 0
# What JOBDATA's mount and the job's start load, loaded now rather than on
# the job's path: FAT and its code pages, and runuser's libraries and PAM.
modprobe -q -a vfat nls_cp437 nls_ascii nls_utf8
runuser -u runner -- true
echo ready >"$port"
exit 0
`,
  },
  // What this image's guest side can do, for the host to read before boot.
  [GUEST_FEATURES_PATH]: {
    mode: 0o644,
    content: "late-jobdata\n",
  },
  "etc/systemd/system/forrest-job.service": {
    mode: 0o644,
    content: "[Unit]\nDescription=Forrest job (config/job.sh as runner)\n" +
      "Requires=home-runner-config.mount\nAfter=home-runner-config.mount network-online.target\n" +
      "Wants=network-online.target\n" +
      "# However the job ends, the machine powers off: that ends the run.\n" +
      "SuccessAction=poweroff\nFailureAction=poweroff\n\n" +
      "[Service]\nType=oneshot\nExecStart=/usr/local/lib/forrest/run-job\n\n" +
      "[Install]\nWantedBy=multi-user.target\n",
  },
  "usr/local/lib/forrest/mount-shares": { mode: 0o755, content: MOUNT_SHARES },
  "usr/local/lib/forrest/run-job": {
    mode: 0o755,
    content: `#!/bin/sh
# Runs the job as runner. Its output goes to Forrest's output port (output.txt
# on the host, what forrest exec shows), else to the console (log.txt).
out=/dev/virtio-ports/forrest.output
i=0
while [ ! -c "$out" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
[ -c "$out" ] || out=/dev/ttyS0
/usr/local/lib/forrest/mount-shares
cd /home/runner
# job.sh runs by its own #! line (bash where it says bash: the original's
# templates need that); one without a #! line runs with /bin/sh.
job=/home/runner/config/job.sh
if [ "$(head -c 2 "$job")" = "#!" ]; then set -- "$job"; else set -- /bin/sh "$job"; fi
runuser -u runner -- "$@" </dev/null >"$out" 2>&1
echo "$?" >/home/runner/config/exit-code
sync
`,
  },
};

/** Units the image starts at boot (systemctl enable in the new root). */
export const DEBIAN_ENABLE = [
  "forrest-job.service",
  "forrest-ready.service",
  "serial-getty@ttyS1.service",
  "systemd-networkd.service",
];

/** Units that only slow a one-job VM down. */
export const DEBIAN_MASK = [
  "apt-daily.timer",
  "apt-daily-upgrade.timer",
  "e2scrub_all.timer",
  "e2scrub_reap.service",
  "fstrim.timer",
  "man-db.timer",
  // Measured under TCG (bench/boot_bench.ts), together about a second of
  // boot that no job needs: logins on a display and on the console (the
  // root shell is on ttyS1), timers of a long-lived system, kernel modules
  // and file systems loaded on demand anyway, a journal kept on disk, and
  // records (utmp, random seed, sysusers) of a machine that lives once.
  "getty@tty1.service",
  "serial-getty@ttyS0.service",
  "dpkg-db-backup.timer",
  "systemd-tmpfiles-clean.timer",
  "modprobe@configfs.service",
  "modprobe@dm_mod.service",
  "modprobe@drm.service",
  "modprobe@efi_pstore.service",
  "modprobe@fuse.service",
  "dev-hugepages.mount",
  "sys-fs-fuse-connections.mount",
  "sys-kernel-config.mount",
  "sys-kernel-debug.mount",
  "sys-kernel-tracing.mount",
  "systemd-journal-flush.service",
  "systemd-pstore.service",
  "systemd-random-seed.service",
  "systemd-sysusers.service",
  "systemd-update-utmp.service",
  "systemd-update-utmp-runlevel.service",
];

/**
 * systemd generators a Forrest guest has nothing for (SysV scripts,
 * partitions to find, encrypted or verity volumes, a console getty): each
 * runs at every boot before any unit starts.
 */
export const DEBIAN_MASK_GENERATORS = [
  "systemd-bless-boot-generator",
  "systemd-cryptsetup-generator",
  "systemd-debug-generator",
  "systemd-getty-generator",
  "systemd-gpt-auto-generator",
  "systemd-hibernate-resume-generator",
  "systemd-integritysetup-generator",
  "systemd-rc-local-generator",
  "systemd-run-generator",
  "systemd-system-update-generator",
  "systemd-sysv-generator",
  "systemd-veritysetup-generator",
];

/**
 * qemu's user network always has its DNS server at 10.0.2.3: a fixed
 * resolv.conf instead of systemd-resolved, which starts before
 * sysinit.target and so holds up every unit after it.
 */
export const DEBIAN_RESOLV_CONF = "nameserver 10.0.2.3\n";

/**
 * Shell commands that make a root with DEBIAN_OVERLAY in it a Forrest
 * guest, each with the root as "$1" (mmdebstrap's customize hooks take
 * them as they are; an OCI build runs each with sh): the user `runner`
 * (uid 1001, unless the image has one), root locked, the units enabled
 * and masked, the resolver qemu's, no apt lists.
 */
export const GUEST_CUSTOMIZE: readonly string[] = [
  'chroot "$1" sh -c "getent passwd runner >/dev/null || ' +
  'useradd --create-home --uid 1001 --user-group --shell /bin/bash runner"',
  'chroot "$1" passwd --lock root',
  `chroot "$1" systemctl enable ${DEBIAN_ENABLE.join(" ")}`,
  `chroot "$1" systemctl mask ${DEBIAN_MASK.join(" ")}`,
  `mkdir -p "$1"/etc/systemd/system-generators && for g in ${
    DEBIAN_MASK_GENERATORS.join(" ")
  }; do ln -sf /dev/null "$1"/etc/systemd/system-generators/$g; done`,
  // Last: mmdebstrap (and an OCI build) put the host's resolv.conf there
  // for apt; an image's may be a link to systemd-resolved's stub.
  `rm -f "$1"/etc/resolv.conf && printf '${DEBIAN_RESOLV_CONF}' > "$1"/etc/resolv.conf`,
  // The image has no apt lists; jobs run apt-get update first anyway.
  'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin',
];

/** What `image build … --with FEATURE` adds. */
export type GuestFeature = "docker";
export const GUEST_FEATURES: readonly GuestFeature[] = ["docker"];

/**
 * Per feature: the packages apt installs, and commands run after
 * GUEST_CUSTOMIZE (the root as "$1"). Docker: Debian's and Ubuntu's
 * `docker.io`, `runner` in group `docker`, and the daemon started by its
 * socket on a job's first `docker` command, not at boot: it would cost
 * every job seconds of boot under TCG, most of them not using it.
 */
export const FEATURE_SETUP: Readonly<
  Record<
    GuestFeature,
    { packages: readonly string[]; customize: readonly string[] }
  >
> = {
  docker: {
    // apparmor: Debian's kernel has AppArmor on, and dockerd then needs
    // apparmor_parser for its containers' profile (a Recommends only).
    packages: ["docker.io", "apparmor"],
    customize: [
      'chroot "$1" usermod --append --groups docker runner',
      'chroot "$1" systemctl disable docker.service containerd.service',
      'chroot "$1" systemctl enable docker.socket',
    ],
  },
};

/** The packages and commands of some features, in one list each. */
export function featureSetup(
  features: readonly GuestFeature[],
): { packages: string[]; customize: string[] } {
  const chosen = GUEST_FEATURES.filter((f) => features.includes(f));
  return {
    packages: chosen.flatMap((f) => FEATURE_SETUP[f].packages),
    customize: chosen.flatMap((f) => FEATURE_SETUP[f].customize),
  };
}

/** Installed beyond Debian's essential packages and apt. */
export const DEBIAN_PACKAGES = [
  "systemd-sysv",
  // useradd: essential up to bookworm, not in trixie's minimal set.
  "passwd",
  // libicu, which the actions runner needs, whatever its version is named
  // in the release (libicu72 in bookworm, libicu76 in trixie).
  "icu-devtools",
  "udev",
  "dbus",
  "linux-image-amd64",
  "iproute2",
  "sudo",
  "git",
  "curl",
  "ca-certificates",
  "procps",
  "less",
  "xz-utils",
  // For Forrest's own initramfs (initrd.ts), which boots seconds faster.
  "busybox-static",
];
