/**
 * The Debian image of `forrest image build debian`, built once through the
 * CLI and cached outside the clone, keyed by everything that decides its
 * contents (the builder and its overlay) and rebuilt when missing.
 */

import { join } from "node:path";
import { pathExists } from "../src/host/mod.ts";
import { runForrest } from "./cli.ts";

const SOURCES = [
  "../src/images/build_debian.ts",
  "../src/images/debian_overlay.ts",
  "../src/images/initrd.ts",
  "../src/images/vmlinux.ts",
];

async function key(
  packages: readonly string[],
  release: string,
): Promise<string> {
  const texts = await Promise.all(
    SOURCES.map((path) => Deno.readTextFile(new URL(path, import.meta.url))),
  );
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode([release, ...packages, ...texts].join("\n")),
  );
  return Array.from(
    new Uint8Array(digest).slice(0, 8),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

const building = new Map<string, Promise<string>>();

/**
 * The image of `release`, built with `packages` added (the benchmark adds
 * cloud-init).
 */
export function testDebianImage(
  packages: readonly string[] = [],
  release: "bookworm" | "trixie" = "bookworm",
): Promise<string> {
  const id = [release, ...packages].join(",");
  if (!building.has(id)) building.set(id, build(packages, release));
  return building.get(id)!;
}

async function build(
  packages: readonly string[],
  release: string,
): Promise<string> {
  const cache = join(
    Deno.env.get("XDG_CACHE_HOME") ??
      join(Deno.env.get("HOME") ?? "/tmp", ".cache"),
    "forrest-tests",
  );
  const suffix = packages.length ? `-${packages.join("-")}` : "";
  const image = join(
    cache,
    `debian-${release}${suffix}-${await key(packages, release)}.img`,
  );
  if (await pathExists(image)) return image;
  await Deno.mkdir(cache, { recursive: true });
  const base = await Deno.makeTempDir({ prefix: "forrest-build-" });
  try {
    const result = await runForrest([
      "image",
      "build",
      "debian",
      "--release",
      release,
      "--out",
      image,
      "--base-dir",
      base,
      "--accel",
      "tcg",
      ...packages.flatMap((name) => ["--package", name]),
    ]);
    if (result.code !== 0) {
      throw new Error(`image build failed:\n${result.stderr}`);
    }
    // Images of earlier builders are stale: ~500 MB each on disk.
    const stale = new RegExp(`^debian-${release}${suffix}-[0-9a-f]{16}\\.img$`);
    for await (const entry of Deno.readDir(cache)) {
      if (stale.test(entry.name) && join(cache, entry.name) !== image) {
        await Deno.remove(join(cache, entry.name));
      }
    }
    return image;
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}
