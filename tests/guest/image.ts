/**
 * The test guest: a small bootable image built from Debian packages, with
 * no root and no network beyond the Debian mirror. Debian's cloud kernel
 * and a static busybox go into an ext4 file made with `mkfs.ext4 -d`; an
 * initramfs loads the virtio modules and mounts it; its /sbin/init keeps the
 * guest contract (product.md §6) in a few lines of shell: JOBDATA on
 * /home/runner/config, job.sh run as runner with its output on the
 * forrest.output port, exit-code written, power off; a root shell on the
 * second serial port.
 *
 * Built once per set of inputs and cached outside the clone.
 */

import { join } from "node:path";
import { pathExists } from "../../src/host/mod.ts";
import { fastInitrd, INITRD_MODULES } from "../../src/images/mod.ts";

/** The guest contract, as the images of forrest image build keep it. */
const ROOT_INIT = `#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
hostname forrest-test
for m in fat vfat nls_cp437 nls_iso8859-1 nls_utf8 virtio_console; do
  insmod /lib/modules/$m.ko 2>/dev/null
done
# A root shell on the second serial port (forrest shell).
setsid sh -c 'while true; do sh -i </dev/ttyS1 >/dev/ttyS1 2>&1; done' &
mkdir -p /home/runner/config
i=0
while ! jobdata=$(findfs LABEL=JOBDATA 2>/dev/null) && [ $i -lt 100 ]; do usleep 50000; i=$((i + 1)); done
mount -t vfat -o uid=1001,gid=1001,umask=077,iocharset=utf8 "$jobdata" /home/runner/config
out=/dev/ttyS0
for port in /sys/class/virtio-ports/*; do
  [ "$(cat "$port/name" 2>/dev/null)" = forrest.output ] && out=/dev/\${port##*/}
done
cd /home/runner
su -s /bin/sh -c "sh /home/runner/config/job.sh" runner </dev/null >"$out" 2>&1
echo "$?" >/home/runner/config/exit-code
sync
umount /home/runner/config
sync
poweroff -f
`;

/** Bump when the way the image is built changes, to rebuild cached images. */
const BUILDER_VERSION = "2";

async function sh(
  program: string,
  args: string[],
  cwd?: string,
): Promise<string> {
  const out = await new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(cwd ? { cwd } : {}),
  }).output();
  if (!out.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr).trim()
      }`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(text),
  );
  return Array.from(
    new Uint8Array(digest),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

function cacheDir(): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ??
    join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "forrest-tests");
}

/** The packages the image is built from, as apt would install them now. */
async function inputs(): Promise<{ kernel: string; busybox: string }> {
  const depends = await sh("apt-cache", ["depends", "linux-image-cloud-amd64"]);
  const kernel = /Depends: (linux-image-[0-9][^\s]*-cloud-amd64)/.exec(depends)
    ?.[1];
  const policy = await sh("apt-cache", ["policy", "busybox-static"]);
  const busybox = /Candidate: (\S+)/.exec(policy)?.[1];
  if (!kernel || !busybox || busybox === "(none)") {
    throw new Error(
      "apt knows no linux-image-cloud-amd64 or busybox-static: run apt-get update " +
        "(scripts/setup.sh does on a new machine)",
    );
  }
  return { kernel, busybox };
}

let building: Promise<string> | undefined;

/** Path of the test guest image, building it first if it is not cached. */
export function testGuestImage(): Promise<string> {
  building ??= build();
  return building;
}

async function build(): Promise<string> {
  const { kernel, busybox } = await inputs();
  const key = (await sha256(
    [
      BUILDER_VERSION,
      kernel,
      busybox,
      await Deno.readTextFile(
        new URL("../../src/images/initrd.ts", import.meta.url),
      ),
      ROOT_INIT,
    ].join("\n"),
  )).slice(0, 16);
  const image = join(cacheDir(), `test-guest-${key}.img`);
  if (await pathExists(image)) return image;

  await Deno.mkdir(cacheDir(), { recursive: true });
  const work = await Deno.makeTempDir({ prefix: "forrest-guest-" });
  try {
    await sh(
      "apt-get",
      ["download", "-q", kernel, `busybox-static=${busybox}`],
      work,
    );
    const pkgs = join(work, "pkgs");
    for await (const entry of Deno.readDir(work)) {
      if (entry.name.endsWith(".deb")) {
        await sh("dpkg-deb", ["-x", join(work, entry.name), pkgs]);
      }
    }
    const boot = await Array.fromAsync(Deno.readDir(join(pkgs, "boot")));
    const version = boot.find((e) => e.name.startsWith("vmlinuz-"))!.name.slice(
      "vmlinuz-".length,
    );
    const modules = join(pkgs, "lib/modules", version, "kernel");
    const findModule = async (name: string): Promise<Uint8Array> => {
      const found =
        (await sh("find", [modules, "-name", `${name}.ko`])).trim().split(
          "\n",
        )[0];
      if (!found) throw new Error(`module ${name} is not in ${kernel}`);
      return await Deno.readFile(found);
    };
    const busyboxBinary = await Deno.readFile(join(pkgs, "bin/busybox"));

    // The same initramfs Forrest's Debian images boot with.
    const initrdModules = new Map<string, Uint8Array>();
    for (const name of INITRD_MODULES) {
      initrdModules.set(name, await findModule(name));
    }
    const initrd = fastInitrd(busyboxBinary, initrdModules);

    const root = join(work, "root");
    for (
      const dir of [
        "bin",
        "sbin",
        "etc",
        "boot",
        "dev",
        "proc",
        "sys",
        "tmp",
        "root",
        "home/runner",
        "lib/modules",
      ]
    ) {
      await Deno.mkdir(join(root, dir), { recursive: true });
    }
    await Deno.writeFile(join(root, "bin/busybox"), busyboxBinary, {
      mode: 0o755,
    });
    await Deno.chmod(join(root, "bin/busybox"), 0o755);
    const applets = (await sh(join(pkgs, "bin/busybox"), ["--list"])).trim()
      .split("\n");
    for (const applet of applets) {
      if (applet !== "busybox") {
        await Deno.symlink("busybox", join(root, "bin", applet));
      }
    }
    await Deno.writeTextFile(join(root, "sbin/init"), ROOT_INIT, {
      mode: 0o755,
    });
    await Deno.chmod(join(root, "sbin/init"), 0o755);
    await Deno.writeTextFile(
      join(root, "etc/passwd"),
      "root:x:0:0:root:/root:/bin/sh\nrunner:x:1001:1001:runner:/home/runner:/bin/sh\n",
    );
    await Deno.writeTextFile(
      join(root, "etc/group"),
      "root:x:0:\nrunner:x:1001:\n",
    );
    await Deno.copyFile(
      join(pkgs, "boot", `vmlinuz-${version}`),
      join(root, "boot", `vmlinuz-${version}`),
    );
    await Deno.writeFile(
      join(root, "boot", `initrd.img-${version}`),
      initrd,
    );
    for (
      const m of [
        "fat",
        "vfat",
        "nls_cp437",
        "nls_iso8859-1",
        "nls_utf8",
        "virtio_console",
      ]
    ) {
      await Deno.writeFile(
        join(root, "lib/modules", `${m}.ko`),
        await findModule(m),
      );
    }
    await Deno.chmod(join(root, "tmp"), 0o1777);
    if (Deno.uid() === 0) {
      await Deno.chown(join(root, "home/runner"), 1001, 1001);
    }

    const temp = `${image}.${Deno.pid}.tmp`;
    await sh("mkfs.ext4", [
      "-q",
      "-F",
      "-L",
      "forrest-test",
      "-d",
      root,
      temp,
      "96M",
    ]);
    await Deno.rename(temp, image);
    // Images of earlier builders are stale.
    for await (const entry of Deno.readDir(cacheDir())) {
      if (
        /^test-guest-[0-9a-f]{16}\.img$/.test(entry.name) &&
        join(cacheDir(), entry.name) !== image
      ) {
        await Deno.remove(join(cacheDir(), entry.name));
      }
    }
    return image;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
