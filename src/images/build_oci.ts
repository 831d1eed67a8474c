/**
 * `forrest image build oci SOURCE`: a container image made into a Forrest
 * image that boots directly. skopeo copies the source into an OCI layout in
 * the work folder, umoci unpacks it; apt then adds what a Forrest guest
 * needs (systemd, udev, a kernel, sudo, … and the packages asked for) in a
 * chroot, and the rest is as `image build debian`: Forrest's files and
 * units, user `runner` (uid 1001), its initramfs, ext4 with `mkfs.ext4 -d`,
 * a smoke boot, and publication by a rename. Debian and Ubuntu roots (and
 * derivatives that say so) are supported; anything else is refused with
 * what it is, before anything is installed.
 */

import { dirname, join } from "node:path";
import { runChecked, runGroupChecked } from "../host/mod.ts";
import { writeBuildRecord } from "./build_record.ts";
import {
  type BuildDebianOptions,
  BuildError,
  finishRoot,
  inBuildFolder,
  smokeAndPublish,
  writeOverlay,
} from "./build_debian.ts";
import {
  featureSetup,
  GUEST_CUSTOMIZE,
  type GuestFeature,
} from "./debian_overlay.ts";
import {
  checkRunnerUser,
  guestFamily,
  guestPackages,
  type OciSource,
  type OsRelease,
  parseOsRelease,
} from "./oci_source.ts";

export interface BuildOciOptions extends
  Pick<
    BuildDebianOptions,
    | "out"
    | "size"
    | "packages"
    | "runner"
    | "forgejoRunner"
    | "smoke"
    | "reporter"
    | "signal"
  > {
  readonly source: OciSource;
  /**
   * registries.conf(5) for skopeo (mirrors, plain-HTTP registries);
   * the system's when undefined.
   */
  readonly registriesConf?: string | undefined;
  /** What else the guest gets (`--with`). */
  readonly features?: readonly GuestFeature[];
}

/** What was built from what. */
export interface OciBuilt {
  /** The image manifest's digest, as skopeo copied it. */
  readonly digest: string;
  readonly os: OsRelease;
}

/** The tag the source gets in the work folder's layout. */
const TAG = "forrest";

export async function buildOciImage(
  options: BuildOciOptions,
): Promise<OciBuilt> {
  return await inBuildFolder(options.out, async (work, image) => {
    const layout = join(work, "layout");
    const copied = options.reporter.phase(
      `copying ${options.source.skopeo} with skopeo`,
    );
    await runGroupChecked("skopeo", [
      ...(options.registriesConf === undefined
        ? []
        : ["--registries-conf", options.registriesConf]),
      "copy",
      "--quiet",
      // A multi-platform image: the machine's.
      ...(options.source.transport === "docker://"
        ? ["--override-os", "linux", "--override-arch", "amd64"]
        : []),
      options.source.skopeo,
      `oci:${layout}:${TAG}`,
    ], { signal: options.signal });
    copied();
    const digest = await manifestDigest(layout);
    const unpacked = options.reporter.phase("unpacking with umoci");
    const bundle = join(work, "bundle");
    await runGroupChecked("umoci", [
      "unpack",
      "--image",
      `${layout}:${TAG}`,
      bundle,
    ], { signal: options.signal });
    unpacked();
    const root = join(bundle, "rootfs");
    // The guest's / is this folder's mode (mkfs.ext4 -d): a layer without
    // an entry for it must not leave it closed to runner.
    await Deno.chmod(root, 0o755);
    const os = await readOs(root, options.source.skopeo);
    const family = guestFamily(os);
    if (family === undefined) {
      throw new BuildError(
        `${options.source.skopeo} is ${os.prettyName} (ID=${os.id}): ` +
          "Forrest makes images of Debian and Ubuntu (and distributions " +
          "whose ID_LIKE names them) only, since it installs systemd, a " +
          "kernel and its units with apt",
      );
    }
    const runnerProblem = checkRunnerUser(
      await readInRoot(root, "etc/passwd").catch(() => ""),
    );
    if (runnerProblem !== undefined) {
      throw new BuildError(`${options.source.skopeo}: ${runnerProblem}`);
    }
    const features = featureSetup(options.features ?? []);
    const packages = guestPackages(family, [
      ...features.packages,
      ...options.packages,
    ]);
    const installed = options.reporter.phase(
      `installing what a Forrest guest needs with apt ` +
        `(${packages.length} packages and their dependencies)`,
    );
    await withChroot(root, () => aptInstall(root, packages, options.signal));
    installed();
    const overlay = join(work, "overlay");
    await writeOverlay(overlay);
    await runChecked("cp", ["-a", `${overlay}/.`, `${root}/`]);
    for (const command of [...GUEST_CUSTOMIZE, ...features.customize]) {
      await runChecked("sh", ["-c", command, "customize", root]);
    }
    await writeBuildRecord(root, {
      kind: "oci",
      source: options.source.skopeo,
      digest,
      distribution: os.prettyName,
      builtAt: new Date().toISOString(),
    });
    options.signal?.throwIfAborted();
    await finishRoot(root, work, image, options);
    // The unpacked root and the layout are no longer needed: the smoke
    // boot's fork may need the room.
    await Deno.remove(bundle, { recursive: true });
    await Deno.remove(layout, { recursive: true });
    await smokeAndPublish(image, work, options, undefined);
    return { digest, os };
  });
}

/** The digest of the one manifest in a layout's index. */
async function manifestDigest(layout: string): Promise<string> {
  const index = JSON.parse(
    await Deno.readTextFile(join(layout, "index.json")),
  ) as { manifests?: { digest?: string }[] };
  const digest = index.manifests?.[0]?.digest;
  if (typeof digest !== "string") {
    throw new BuildError(`skopeo wrote no manifest to ${layout}/index.json`);
  }
  return digest;
}

async function readOs(root: string, source: string): Promise<OsRelease> {
  for (const path of ["etc/os-release", "usr/lib/os-release"]) {
    try {
      return parseOsRelease(await readInRoot(root, path));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  throw new BuildError(
    `${source} has no /etc/os-release or /usr/lib/os-release: Forrest ` +
      "cannot tell its distribution (it supports Debian and Ubuntu)",
  );
}

/**
 * A file of the root, with symbolic links resolved inside it: an image's
 * absolute link (/etc/os-release → /usr/lib/os-release) must not reach the
 * host's file of that name.
 */
export async function readInRoot(root: string, path: string): Promise<string> {
  let inside = path.replace(/^\/+/, "");
  for (let hops = 0; hops < 16; hops++) {
    const full = join(root, inside);
    const info = await Deno.lstat(full);
    if (!info.isSymlink) return await Deno.readTextFile(full);
    const target = await Deno.readLink(full);
    inside = target.startsWith("/")
      ? target.replace(/^\/+/, "")
      : join(dirname(inside), target);
    if (inside.startsWith("..")) inside = inside.replace(/^(\.\.\/?)+/, "");
  }
  throw new BuildError(`/${path} in the image: too many symbolic links`);
}

/**
 * /proc, /sys and /dev in the root while `body` runs, and the host's
 * resolver; no service starts (policy-rc.d). All undone after.
 */
async function withChroot(
  root: string,
  body: () => Promise<void>,
): Promise<void> {
  const mounts: string[] = [];
  const policy = join(root, "usr/sbin/policy-rc.d");
  try {
    for (
      const [what, where, ...args] of [
        ["proc", "proc", "-t", "proc"],
        ["sysfs", "sys", "-t", "sysfs"],
        ["/dev", "dev", "--bind"],
        ["/dev/pts", "dev/pts", "--bind"],
      ] as const
    ) {
      const point = join(root, where);
      await Deno.mkdir(point, { recursive: true });
      await runChecked("mount", [...args, what, point]);
      mounts.push(point);
    }
    await Deno.remove(join(root, "etc/resolv.conf")).catch(() => {});
    await Deno.copyFile("/etc/resolv.conf", join(root, "etc/resolv.conf"));
    await Deno.mkdir(dirname(policy), { recursive: true });
    await Deno.writeTextFile(policy, "#!/bin/sh\nexit 101\n", { mode: 0o755 });
    await body();
  } finally {
    await Deno.remove(policy).catch(() => {});
    for (const point of mounts.reverse()) {
      await runChecked("umount", ["--lazy", point]).catch(() => {});
    }
  }
}

async function aptInstall(
  root: string,
  packages: readonly string[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const apt = (...args: string[]) =>
    runGroupChecked("env", [
      "DEBIAN_FRONTEND=noninteractive",
      "LC_ALL=C.UTF-8",
      "chroot",
      root,
      "apt-get",
      "-q",
      "-o",
      "Dpkg::Use-Pty=0",
      ...args,
    ], { signal });
  await apt("update");
  await apt("install", "-y", "--no-install-recommends", ...packages);
  await apt("clean");
}
