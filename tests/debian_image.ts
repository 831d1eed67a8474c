/**
 * The Debian image of `forrest image build debian`, built once through the
 * CLI and cached outside the clone, keyed by everything that decides its
 * contents (the builder and its overlay) and rebuilt when missing.
 */

import { join } from "node:path";
import { runForrest } from "./cli.ts";

const SOURCES = [
  "../src/images/build_debian.ts",
  "../src/images/debian_overlay.ts",
];

async function key(): Promise<string> {
  const texts = await Promise.all(
    SOURCES.map((path) => Deno.readTextFile(new URL(path, import.meta.url))),
  );
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(["bookworm", ...texts].join("\n")),
  );
  return Array.from(
    new Uint8Array(digest).slice(0, 8),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

let building: Promise<string> | undefined;

export function testDebianImage(): Promise<string> {
  building ??= (async () => {
    const cache = join(
      Deno.env.get("XDG_CACHE_HOME") ??
        join(Deno.env.get("HOME") ?? "/tmp", ".cache"),
      "forrest-tests",
    );
    const image = join(cache, `debian-bookworm-${await key()}.img`);
    if (await Deno.stat(image).then(() => true, () => false)) return image;
    await Deno.mkdir(cache, { recursive: true });
    const base = await Deno.makeTempDir({ prefix: "forrest-build-" });
    try {
      const result = await runForrest([
        "image",
        "build",
        "debian",
        "--out",
        image,
        "--base-dir",
        base,
        "--accel",
        "tcg",
      ]);
      if (result.code !== 0) {
        throw new Error(`image build failed:\n${result.stderr}`);
      }
      return image;
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  })();
  return building;
}
