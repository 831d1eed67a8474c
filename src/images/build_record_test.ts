import assert from "node:assert/strict";
import { describeBuild } from "./build_record.ts";

Deno.test("describeBuild(): a Debian release, its cloud image, an OCI source with a short digest", () => {
  const builtAt = "2026-11-28T00:00:00.000Z";
  assert.equal(
    describeBuild({
      kind: "debian",
      release: "bookworm",
      method: "debootstrap",
      builtAt,
    }),
    "debian bookworm",
  );
  assert.equal(
    describeBuild({
      kind: "debian",
      release: "trixie",
      method: "cloud",
      builtAt,
    }),
    "debian trixie cloud image",
  );
  assert.equal(
    describeBuild({
      kind: "oci",
      source: "docker://debian:bookworm",
      digest: `sha256:${"0123456789ab".repeat(5)}abcd`,
      distribution: "Debian GNU/Linux 12 (bookworm)",
      builtAt,
    }),
    "docker://debian:bookworm (sha256:0123456789ab, Debian GNU/Linux 12 (bookworm))",
  );
});
