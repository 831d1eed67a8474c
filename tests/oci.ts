/**
 * OCI images made by tests, with no registry: a layer from a folder or a
 * tarball, put into an OCI layout with umoci, and copied to an archive
 * with skopeo, as a user's `docker save` or `skopeo copy` would make one.
 */

import { join } from "node:path";
import { type CliResult, runForrest } from "./cli.ts";
import { withServer } from "./http.ts";

async function run(program: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(program, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(
      `${program} ${args.join(" ")} failed: ${
        new TextDecoder().decode(output.stderr)
      }`,
    );
  }
}

/**
 * An OCI layout at `layout` whose image `tag` has one layer, `layerTar`
 * (a tarball of a root file system).
 */
export async function ociLayout(
  layout: string,
  tag: string,
  layerTar: string,
): Promise<void> {
  await run("umoci", ["init", "--layout", layout]);
  await run("umoci", ["new", "--image", `${layout}:${tag}`]);
  await run("umoci", [
    "raw",
    "add-layer",
    "--image",
    `${layout}:${tag}`,
    layerTar,
  ]);
}

/** A tarball of `files` (path → content), owned by root, at `tar`. */
export async function rootTar(
  dir: string,
  tar: string,
  files: Record<string, string | { copyOf: string; mode: number }>,
): Promise<void> {
  const root = join(dir, "tar-root");
  for (const [path, file] of Object.entries(files)) {
    const full = join(root, path);
    await Deno.mkdir(join(full, ".."), { recursive: true });
    if (typeof file === "string") await Deno.writeTextFile(full, file);
    else {
      await Deno.copyFile(file.copyOf, full);
      await Deno.chmod(full, file.mode);
    }
  }
  await run("tar", [
    "--create",
    "--file",
    tar,
    "--owner=0",
    "--group=0",
    "--numeric-owner",
    "-C",
    root,
    ".",
  ]);
  await Deno.remove(root, { recursive: true });
}

/** skopeo copy from one transport to another (archives, layouts). */
export async function skopeoCopy(
  from: string,
  to: string,
  flags: string[] = [],
): Promise<void> {
  await run("skopeo", ["copy", "--quiet", ...flags, from, to]);
}

/**
 * A minimal Debian root (`mmdebstrap --variant=minbase`: no systemd, no
 * kernel, no sudo), as the `debian` container image is, as a tarball.
 */
export async function debianMinbaseTar(tar: string): Promise<void> {
  await run("mmdebstrap", ["--quiet", "--variant=minbase", "bookworm", tar]);
}

/** Debian's static busybox, unpacked from its package into `dir`. */
export async function staticBusybox(dir: string): Promise<string> {
  const work = join(dir, "busybox-deb");
  await Deno.mkdir(work, { recursive: true });
  const download = await new Deno.Command("apt-get", {
    args: ["download", "-q", "busybox-static"],
    cwd: work,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!download.success) {
    throw new Error(
      `apt-get download busybox-static failed: ${
        new TextDecoder().decode(download.stderr)
      }`,
    );
  }
  const deb = (await Array.fromAsync(Deno.readDir(work)))
    .find((e) => e.name.endsWith(".deb"))!.name;
  await run("dpkg-deb", ["-x", join(work, deb), join(work, "x")]);
  return join(work, "x/bin/busybox");
}

/** What runDockerJob's containers print. */
export const DOCKER_JOB_OUTPUT = "a container ran\n/built\n";

/**
 * `forrest exec` in `image` of a job that prints who it runs as (user,
 * uid, whether sudo works), then loads a busybox image from a tarball
 * (fetched from the test's server through a forward: no registry), runs
 * a container of it, builds a two-line Dockerfile on it and runs that.
 */
export async function runDockerJob(
  dir: string,
  image: string,
): Promise<CliResult> {
  const layer = join(dir, "busybox-layer.tar");
  await rootTar(dir, layer, {
    "bin/busybox": { copyOf: await staticBusybox(dir), mode: 0o755 },
  });
  const layout = join(dir, "busybox-layout");
  await ociLayout(layout, "1", layer);
  const archive = join(dir, "busybox.tar");
  await skopeoCopy(
    `oci:${layout}:1`,
    `docker-archive:${archive}:forrest-test:1`,
  );
  const script = [
    "set -e",
    "id -un; id -u; sudo -n true && echo sudo",
    "curl -sf http://10.0.2.100/busybox.tar -o /tmp/busybox.tar",
    "docker load -i /tmp/busybox.tar >/dev/null",
    "docker run --rm forrest-test:1 /bin/busybox echo a container ran",
    "mkdir /tmp/context",
    `printf 'FROM forrest-test:1\\nRUN ["/bin/busybox", "touch", "/built"]\\n' >/tmp/context/Dockerfile`,
    "docker build -q -t forrest-test:2 /tmp/context >/dev/null",
    "docker run --rm forrest-test:2 /bin/busybox ls /built",
  ].join("\n");
  let result: CliResult | undefined;
  await withServer(
    { "/busybox.tar": await Deno.readFile(archive) },
    async (url) => {
      result = await runForrest([
        "exec",
        "--image",
        image,
        "--base-dir",
        dir,
        "--accel",
        "tcg",
        "--network",
        "restricted",
        "--forward",
        `80:127.0.0.1:${new URL(url).port}`,
        "--timeout",
        "15m",
        "--",
        "sh",
        "-c",
        script,
      ]);
    },
  );
  return result!;
}

/**
 * A registry (Debian's docker-registry, unpacked from its package: its
 * service is not installed) on 127.0.0.1, storing under `dir`, while
 * `body` runs; skopeo reaches it over plain HTTP through the
 * registries.conf whose path `body` gets too.
 */
export async function withRegistry(
  dir: string,
  body: (host: string, registriesConf: string) => Promise<void>,
): Promise<void> {
  const work = join(dir, "registry-deb");
  await Deno.mkdir(work, { recursive: true });
  await run("sh", [
    "-c",
    `cd '${work}' && apt-get download -q docker-registry >/dev/null`,
  ]);
  const deb = (await Array.fromAsync(Deno.readDir(work)))
    .find((e) => e.name.endsWith(".deb"))!.name;
  await run("dpkg-deb", ["-x", join(work, deb), join(work, "x")]);
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const host = `127.0.0.1:${port}`;
  const config = join(work, "config.yml");
  await Deno.writeTextFile(
    config,
    `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${
      join(work, "data")
    }\nhttp:\n  addr: ${host}\n`,
  );
  const registriesConf = join(work, "registries.conf");
  await Deno.writeTextFile(
    registriesConf,
    `[[registry]]\nlocation = "${host}"\ninsecure = true\n`,
  );
  const registry = new Deno.Command(join(work, "x/usr/bin/docker-registry"), {
    args: ["serve", config],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    for (let i = 0;; i++) {
      const up = await fetch(`http://${host}/v2/`).then(async (r) => {
        await r.body?.cancel();
        return r.ok;
      }).catch(() => false);
      if (up) break;
      if (i > 100) throw new Error(`the registry at ${host} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await body(host, registriesConf);
  } finally {
    registry.kill("SIGTERM");
    await registry.status;
  }
}
