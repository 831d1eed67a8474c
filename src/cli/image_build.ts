/**
 * `forrest image build debian|oci`: build, smoke-boot, publish an image.
 */

import { join, resolve } from "node:path";
import { type Accel, formatSize, parseSize } from "../config/mod.ts";
import { runEphemeral } from "../exec/mod.ts";
import {
  buildDebianImage,
  type BuildDebianOptions,
  BuildError,
  buildOciImage,
  type DebianRelease,
  DEFAULT_CLOUD_URL,
  DEFAULT_FORGEJO_RUNNER_URL,
  DEFAULT_RUNNER_URL,
  type GuestFeature,
  ociImageName,
  parseOciSource,
} from "../images/mod.ts";
import { UsageError } from "./exit.ts";
import { hostSettings } from "./host_settings.ts";
import type { Output } from "./output.ts";
import { stderrReporter } from "./progress.ts";

export interface ImageBuildFlags {
  readonly kind?: "debian" | "oci";
  /** oci: where the container image is (skopeo's transport syntax). */
  readonly source?: string | undefined;
  /** oci: registries.conf(5) for skopeo. */
  readonly registriesConf?: string;
  readonly release: DebianRelease;
  readonly method: "debootstrap" | "cloud";
  readonly out?: string;
  readonly size: string;
  readonly mirror?: string;
  readonly package: string[];
  /** `--with`: docker. */
  readonly with?: GuestFeature[];
  readonly runnerVersion?: string;
  readonly runnerSha256?: string;
  readonly runnerUrl: string;
  readonly forgejoRunnerVersion?: string;
  readonly forgejoRunnerSha256?: string;
  readonly forgejoRunnerUrl: string;
  readonly cloudUrl: string;
  readonly accel?: Accel;
  readonly baseDir?: string;
  readonly config?: string;
}

/** Where `image build debian` puts a release's image by default. */
export function defaultDebianImage(
  baseDir: string,
  release: DebianRelease,
): string {
  return join(baseDir, "images", `debian-${release}.img`);
}

export async function imageBuildCommand(
  flags: ImageBuildFlags,
  context: {
    output: Output;
    env: (name: string) => string | undefined;
    /** Debian's own options given on the command line (an error for oci). */
    debianOnly?: readonly string[];
  },
): Promise<number> {
  const oci = flags.kind === "oci";
  if (oci && flags.source === undefined) {
    throw new UsageError(
      "image build oci needs a SOURCE: docker://REF, oci:DIR[:TAG], " +
        "oci-archive:FILE or docker-archive:FILE",
    );
  }
  if (!oci && flags.source !== undefined) {
    throw new UsageError(
      `image build debian takes no SOURCE (found "${flags.source}"); ` +
        "a container image is image build oci SOURCE",
    );
  }
  if (!oci && flags.registriesConf !== undefined) {
    throw new UsageError("--registries-conf is for image build oci only");
  }
  const misplaced = oci ? context.debianOnly ?? [] : [];
  if (misplaced.length > 0) {
    throw new UsageError(
      `image build oci takes no ${
        misplaced.map((name) =>
          `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
        ).join(", ")
      }: those are image build debian's`,
    );
  }
  const source = (() => {
    if (!oci) return undefined;
    try {
      return parseOciSource(flags.source!, Deno.cwd());
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  })();
  const size = (() => {
    try {
      return parseSize(flags.size);
    } catch (error) {
      throw new UsageError(`--size: ${(error as Error).message}`);
    }
  })();
  if (flags.method === "cloud" && (flags.with ?? []).length > 0) {
    throw new UsageError(
      "--with needs --method debootstrap (cloud images are used as they are)",
    );
  }
  checkRelease("--runner", flags.runnerVersion, flags.runnerSha256, flags);
  checkRelease(
    "--forgejo-runner",
    flags.forgejoRunnerVersion,
    flags.forgejoRunnerSha256,
    flags,
  );
  const host = await hostSettings({
    config: flags.config,
    baseDir: flags.baseDir,
    env: context.env,
  });
  const out = resolve(
    flags.out ??
      (source === undefined
        ? defaultDebianImage(host.baseDir, flags.release)
        : join(host.baseDir, "images", `${ociImageName(source)}.img`)),
  );
  const interrupt = new AbortController();
  const onSignal = () => interrupt.abort(new Error("interrupted"));
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, onSignal);
  }
  const started = performance.now();
  let from = "";
  try {
    if (source === undefined) {
      await buildImage(
        out,
        size,
        flags,
        host,
        context.output,
        interrupt.signal,
      );
    } else {
      const built = await buildOciImage({
        source,
        out,
        size,
        packages: flags.package,
        features: flags.with ?? [],
        registriesConf: flags.registriesConf === undefined
          ? undefined
          : resolve(flags.registriesConf),
        ...releases(flags),
        reporter: stderrReporter(context.output),
        signal: interrupt.signal,
        smoke: smokeBoot(flags, host, interrupt.signal),
      });
      from = ` from ${source.skopeo} (${built.os.prettyName}, ${built.digest})`;
    }
  } catch (error) {
    if (interrupt.signal.aborted) {
      context.output.err(
        "forrest: interrupted; nothing was published and the work folder is gone",
      );
      return 130;
    }
    throw error;
  } finally {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.removeSignalListener(signal, onSignal);
    }
  }
  const built = (await Deno.stat(out)).size;
  context.output.err(
    `forrest: built ${out} (${formatSize(built)})${from} in ${
      ((performance.now() - started) / 1000).toFixed(0)
    } s`,
  );
  return 0;
}

/** A release to bake in: version and sha256 together, debootstrap only. */
function checkRelease(
  flag: string,
  version: string | undefined,
  sha256: string | undefined,
  flags: Pick<ImageBuildFlags, "method">,
): void {
  if ((version === undefined) !== (sha256 === undefined)) {
    throw new UsageError(`${flag}-version and ${flag}-sha256 go together`);
  }
  if (sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(sha256)) {
    throw new UsageError(
      `${flag}-sha256 must be 64 hex digits, not "${sha256}"`,
    );
  }
  if (flags.method === "cloud" && version !== undefined) {
    throw new UsageError(
      `${flag}-version needs --method debootstrap (cloud images are used as they are)`,
    );
  }
}

/** Builds `out` (shared by `image build` and `exec` without --image). */
export async function buildImage(
  out: string,
  size: number,
  flags:
    & Pick<
      ImageBuildFlags,
      | "release"
      | "method"
      | "mirror"
      | "package"
      | "with"
      | "cloudUrl"
      | "accel"
    >
    & ReleaseFlags,
  host: { baseDir: string; accel: Accel },
  output: Output,
  signal?: AbortSignal,
): Promise<void> {
  await buildDebianImage({
    release: flags.release,
    method: flags.method,
    out,
    size,
    mirror: flags.mirror,
    packages: flags.package,
    features: flags.with ?? [],
    ...releases(flags),
    cloudUrl: flags.cloudUrl,
    reporter: stderrReporter(output),
    signal,
    smoke: smokeBoot(flags, host, signal),
  });
}

/** The flags that name runners to bake in. */
type ReleaseFlags = Pick<
  ImageBuildFlags,
  | "runnerVersion"
  | "runnerSha256"
  | "runnerUrl"
  | "forgejoRunnerVersion"
  | "forgejoRunnerSha256"
  | "forgejoRunnerUrl"
>;

/** The runners to bake in, as the flags give them. */
function releases(
  flags: ReleaseFlags,
): Pick<BuildDebianOptions, "runner" | "forgejoRunner"> {
  return {
    runner: flags.runnerVersion === undefined ? undefined : {
      version: flags.runnerVersion,
      sha256: flags.runnerSha256!,
      url: flags.runnerUrl,
    },
    forgejoRunner: flags.forgejoRunnerVersion === undefined ? undefined : {
      version: flags.forgejoRunnerVersion,
      sha256: flags.forgejoRunnerSha256!,
      url: flags.forgejoRunnerUrl,
    },
  };
}

/** Boots a new image and runs `true` in it; throws when that fails. */
function smokeBoot(
  flags: Pick<ImageBuildFlags, "accel">,
  host: { baseDir: string; accel: Accel },
  signal: AbortSignal | undefined,
): BuildDebianOptions["smoke"] {
  return async (image) => {
    const result = await runEphemeral({
      baseDir: resolve(host.baseDir),
      image,
      command: ["true"],
      cpus: 2,
      ram: 2 * 1024 ** 3,
      disk: undefined,
      timeout: 15 * 60_000,
      keep: false,
      accel: flags.accel ?? host.accel,
      clone: "auto",
      network: { mode: "restricted", forwards: [] },
      output: () => {},
      ...(signal ? { signal } : {}),
    });
    if (result.outcome !== "exited" || result.exitCode !== 0) {
      throw new BuildError(
        `The new image did not pass its smoke boot (${result.outcome}` +
          `${
            result.exitCode === undefined
              ? ""
              : `, exit code ${result.exitCode}`
          }); ` +
          `its boot log is in ${result.runDir}`,
      );
    }
  };
}

export const IMAGE_BUILD_DEFAULTS = {
  release: "bookworm" as DebianRelease,
  method: "debootstrap" as const,
  size: "4G",
  runnerUrl: DEFAULT_RUNNER_URL,
  forgejoRunnerUrl: DEFAULT_FORGEJO_RUNNER_URL,
  cloudUrl: DEFAULT_CLOUD_URL,
};
