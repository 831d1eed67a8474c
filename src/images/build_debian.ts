/**
 * `forrest image build debian`: a bootable Debian image that Forrest boots
 * directly (no bootloader, no cloud-init), or the official cloud image
 * checked and converted to raw. Every build is smoke-booted before it is
 * published under its final name by a rename, so that a half-built image
 * never appears there; an interrupted build removes its work folder.
 */

import { basename, dirname, join } from "node:path";
import { fsync, runChecked, runGroupChecked } from "../host/mod.ts";
import {
  DEBIAN_OVERLAY,
  DEBIAN_PACKAGES,
  featureSetup,
  GUEST_CUSTOMIZE,
  type GuestFeature,
} from "./debian_overlay.ts";
import { download, fetchText } from "./download.ts";
import { convertToRaw } from "./fork.ts";
import {
  type BuildRecord,
  buildRecordBeside,
  writeBuildRecord,
} from "./build_record.ts";
import { writeFastInitrds } from "./initrd.ts";
import { writeUncompressedKernels } from "./vmlinux.ts";

export type DebianRelease = "bookworm" | "trixie";
export const DEBIAN_RELEASES: readonly DebianRelease[] = ["bookworm", "trixie"];
const RELEASE_NUMBER: Readonly<Record<DebianRelease, number>> = {
  bookworm: 12,
  trixie: 13,
};

export const DEFAULT_RUNNER_URL =
  "https://github.com/actions/runner/releases/download";
export const DEFAULT_CLOUD_URL = "https://cloud.debian.org/images/cloud";
export const DEFAULT_FORGEJO_RUNNER_URL =
  "https://code.forgejo.org/forgejo/runner/releases/download";

/** How a build tells the user where it is. */
export interface BuildReporter {
  /** A long step starts; call the returned function when it ends. */
  phase(name: string): () => void;
  /** Download progress in bytes. */
  download(done: number, total: number | undefined): void;
}

export interface RunnerRelease {
  readonly version: string;
  readonly sha256: string;
  /** Releases are at `${url}/v${version}/actions-runner-linux-x64-${version}.tar.gz`. */
  readonly url: string;
}

export interface BuildDebianOptions {
  readonly release: DebianRelease;
  readonly method: "debootstrap" | "cloud";
  /** The published image. */
  readonly out: string;
  /** Bytes of the image's file system (sparse). */
  readonly size: number;
  readonly mirror?: string | undefined;
  readonly packages: readonly string[];
  /** What else the guest gets (`--with`): debootstrap only. */
  readonly features?: readonly GuestFeature[];
  readonly runner?: RunnerRelease | undefined;
  /**
   * forgejo-runner, put at /usr/local/bin/forgejo-runner; releases are at
   * `${url}/v${version}/forgejo-runner-${version}-linux-amd64`.
   */
  readonly forgejoRunner?: RunnerRelease | undefined;
  /** Where cloud images are (--method cloud). */
  readonly cloudUrl: string;
  /** Boots the new image and runs `true` in it; throws when that fails. */
  readonly smoke: (image: string, workDir: string) => Promise<void>;
  readonly reporter: BuildReporter;
  readonly signal?: AbortSignal | undefined;
}

export class BuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BuildError";
  }
}

export async function buildDebianImage(
  options: BuildDebianOptions,
): Promise<void> {
  await inBuildFolder(options.out, async (work, image) => {
    if (options.method === "cloud") await fetchCloudImage(image, options);
    else await bootstrapImage(work, image, options);
    await smokeAndPublish(
      image,
      work,
      options,
      options.method === "cloud"
        ? {
          kind: "debian",
          release: options.release,
          method: "cloud",
          builtAt: new Date().toISOString(),
        }
        : undefined,
    );
  });
}

/**
 * Runs a build in a work folder beside `out` (so that publishing is a
 * rename on one file system), given the folder and the image's path in
 * it; the folder goes afterwards, whatever happened.
 */
export async function inBuildFolder<T>(
  out: string,
  build: (work: string, image: string) => Promise<T>,
): Promise<T> {
  await Deno.mkdir(dirname(out), { recursive: true });
  const work = await Deno.makeTempDir({ dir: dirname(out), prefix: ".build-" });
  try {
    return await build(work, join(work, basename(out)));
  } finally {
    await removeWorkDir(work);
  }
}

/** The smoke boot of a built image, then its publication (see publish). */
export async function smokeAndPublish(
  image: string,
  work: string,
  options: Pick<BuildDebianOptions, "out" | "smoke" | "reporter" | "signal">,
  beside: BuildRecord | undefined,
): Promise<void> {
  options.signal?.throwIfAborted();
  const smoked = options.reporter.phase(
    "smoke boot: running `true` in the new image",
  );
  await options.smoke(image, work);
  smoked();
  await publish(image, options.out, beside);
}

/**
 * Moves a built image to its name, durably. `beside`: the record of an
 * image that cannot hold one, written first; otherwise a record an
 * earlier image of that name left beside it goes.
 */
export async function publish(
  image: string,
  out: string,
  beside: BuildRecord | undefined,
): Promise<void> {
  const record = buildRecordBeside(out);
  if (beside === undefined) await Deno.remove(record).catch(() => {});
  else {
    await Deno.writeTextFile(
      `${record}.tmp`,
      `${JSON.stringify(beside, null, 2)}\n`,
    );
    await fsync(`${record}.tmp`);
    await Deno.rename(`${record}.tmp`, record);
  }
  await fsync(image);
  await Deno.rename(image, out);
  await fsync(dirname(out));
}

async function bootstrapImage(
  work: string,
  image: string,
  options: BuildDebianOptions,
) {
  const root = join(work, "root");
  const overlay = join(work, "overlay");
  await writeOverlay(overlay);
  const features = featureSetup(options.features ?? []);
  const packages = [
    ...new Set([...DEBIAN_PACKAGES, ...features.packages, ...options.packages]),
  ];
  const bootstrapped = options.reporter.phase(
    `installing Debian ${options.release} with mmdebstrap (${packages.length} packages and their dependencies)`,
  );
  await runGroupChecked("mmdebstrap", [
    "--quiet",
    "--variant=apt",
    `--include=${packages.join(",")}`,
    // Files first, then the user (useradd would not create an existing
    // home), then the units, which need both.
    `--customize-hook=sync-in ${overlay} /`,
    ...[...GUEST_CUSTOMIZE, ...features.customize].map((command) =>
      `--customize-hook=${command}`
    ),
    options.release,
    root,
    ...(options.mirror ? [options.mirror] : []),
  ], { signal: options.signal });
  bootstrapped();
  await writeBuildRecord(root, {
    kind: "debian",
    release: options.release,
    method: "debootstrap",
    builtAt: new Date().toISOString(),
  });
  await finishRoot(root, work, image, options);
}

/**
 * The last steps of every built root: Forrest's initramfs and an
 * uncompressed kernel for each kernel, the runners to bake in, then the
 * ext4 file system of `options.size` at `image`.
 */
export async function finishRoot(
  root: string,
  work: string,
  image: string,
  options: Pick<
    BuildDebianOptions,
    "size" | "runner" | "forgejoRunner" | "reporter" | "signal"
  >,
): Promise<void> {
  await writeFastInitrds(root);
  await writeUncompressedKernels(root);
  if (options.runner) await installRunner(root, work, options.runner, options);
  if (options.forgejoRunner) {
    await installForgejoRunner(root, work, options.forgejoRunner, options);
  }
  const made = options.reporter.phase(
    "making the ext4 file system (mkfs.ext4 -d)",
  );
  await runChecked("mkfs.ext4", [
    "-q",
    "-F",
    "-L",
    "forrest-root",
    "-d",
    root,
    image,
    `${Math.ceil(options.size / 1024 ** 2)}M`,
  ]);
  made();
}

/** Forrest's guest files (DEBIAN_OVERLAY) under `dir`, with their modes. */
export async function writeOverlay(dir: string): Promise<void> {
  for (const [path, file] of Object.entries(DEBIAN_OVERLAY)) {
    const full = join(dir, path);
    await Deno.mkdir(dirname(full), { recursive: true });
    await Deno.writeTextFile(full, file.content);
    await Deno.chmod(full, file.mode);
  }
}

/**
 * Puts the actions runner into /home/runner/actions-runner, so that jobs
 * need no download; the tarball must match its sha256.
 */
export async function installRunner(
  root: string,
  work: string,
  runner: RunnerRelease,
  options: Pick<BuildDebianOptions, "reporter" | "signal">,
): Promise<void> {
  const tarball = await downloadRelease(
    "Runner",
    `actions-runner-linux-x64-${runner.version}.tar.gz`,
    { work, runner, example: "2.320.0", ...options },
  );
  const target = join(root, "home/runner/actions-runner");
  await Deno.mkdir(target, { recursive: true });
  await runChecked("tar", ["-xzf", tarball, "-C", target, "--no-same-owner"]);
  await runChecked("chown", ["-R", "1001:1001", join(root, "home/runner")]);
  await Deno.remove(tarball);
}

/**
 * Puts forgejo-runner (one static binary) at /usr/local/bin/forgejo-runner,
 * where the built-in Forgejo template finds it; it must match its sha256.
 */
export async function installForgejoRunner(
  root: string,
  work: string,
  runner: RunnerRelease,
  options: Pick<BuildDebianOptions, "reporter" | "signal">,
): Promise<void> {
  const file = await downloadRelease(
    "forgejo-runner",
    `forgejo-runner-${runner.version}-linux-amd64`,
    { work, runner, example: "12.8.2", ...options },
  );
  const target = join(root, "usr/local/bin/forgejo-runner");
  await Deno.mkdir(dirname(target), { recursive: true });
  await Deno.copyFile(file, target);
  await Deno.chmod(target, 0o755);
  await Deno.remove(file);
}

interface ReleaseDownload
  extends Pick<BuildDebianOptions, "reporter" | "signal"> {
  readonly work: string;
  readonly runner: RunnerRelease;
  /** A version like the project's, for the message about a bad one. */
  readonly example: string;
}

/**
 * Downloads `${url}/v${version}/${name}` into the work folder, checked
 * against its sha256; the version goes into the URL, so it must be one.
 */
async function downloadRelease(
  what: string,
  name: string,
  options: ReleaseDownload,
): Promise<string> {
  const { runner } = options;
  if (!/^\d+\.\d+\.\d+$/.test(runner.version)) {
    throw new BuildError(
      `${what} version "${runner.version}" is not a version like ${options.example}`,
    );
  }
  const file = join(options.work, name);
  const done = options.reporter.phase(`downloading ${name}`);
  await download(
    `${runner.url.replace(/\/+$/, "")}/v${runner.version}/${name}`,
    file,
    {
      digest: { algorithm: "sha256", hex: runner.sha256 },
      onProgress: options.reporter.download,
      ...(options.signal ? { signal: options.signal } : {}),
    },
  );
  done();
  return file;
}

async function fetchCloudImage(
  image: string,
  options: BuildDebianOptions,
): Promise<void> {
  const number = RELEASE_NUMBER[options.release];
  const base = `${
    options.cloudUrl.replace(/\/+$/, "")
  }/${options.release}/latest`;
  // "generic", not "genericcloud": the cloud kernel has no 9p, so shared
  // folders could not be mounted.
  const name = `debian-${number}-generic-amd64.qcow2`;
  const sums = await fetchText(`${base}/SHA512SUMS`, options.signal);
  const hex = sums.split("\n").map((line) => line.trim().split(/\s+/))
    .find(([, file]) => file === name)?.[0];
  if (!hex) throw new BuildError(`${base}/SHA512SUMS lists no ${name}`);
  const qcow2 = `${image}.qcow2`;
  const done = options.reporter.phase(`downloading ${name}`);
  await download(`${base}/${name}`, qcow2, {
    digest: { algorithm: "sha512", hex },
    onProgress: options.reporter.download,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  done();
  const converted = options.reporter.phase("converting to raw");
  await convertToRaw(qcow2, image);
  await Deno.remove(qcow2);
  const size = (await Deno.stat(image)).size;
  if (options.size > size) await Deno.truncate(image, options.size);
  converted();
}

/**
 * Removes the work folder, unmounting first anything a killed mmdebstrap
 * left mounted inside it (/proc, /sys, /dev of the chroot).
 */
export async function removeWorkDir(work: string): Promise<void> {
  const mounts = (await Deno.readTextFile("/proc/self/mounts")).split("\n")
    .map((line) => line.split(" ")[1]?.replace(/\\040/g, " ") ?? "")
    .filter((point) => point.startsWith(`${work}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of mounts) {
    await runChecked("umount", ["--lazy", point]).catch(() => {});
  }
  await Deno.remove(work, { recursive: true });
}
