import assert from "node:assert/strict";
import {
  checkRunnerUser,
  guestFamily,
  guestPackages,
  ociImageName,
  parseOciSource,
  parseOsRelease,
} from "./oci_source.ts";

Deno.test("parseOciSource() takes skopeo's four transports, local paths from cwd", () => {
  assert.deepEqual(parseOciSource("docker://debian:bookworm", "/w"), {
    transport: "docker://",
    reference: "debian:bookworm",
    skopeo: "docker://debian:bookworm",
  });
  assert.equal(
    parseOciSource("oci:layout:v1", "/w/").skopeo,
    "oci:/w/layout:v1",
  );
  assert.equal(
    parseOciSource("oci:/abs/layout", "/w").skopeo,
    "oci:/abs/layout",
  );
  assert.equal(
    parseOciSource("oci-archive:img.tar", "/w").skopeo,
    "oci-archive:/w/img.tar",
  );
  assert.equal(
    parseOciSource("docker-archive:../d.tar", "/w").skopeo,
    "docker-archive:/w/../d.tar",
  );
  for (const bad of ["debian:bookworm", "docker://", "dir:/x", ""]) {
    assert.throws(
      () => parseOciSource(bad, "/w"),
      new RegExp(
        `SOURCE must be docker://REF, .* found ${JSON.stringify(bad)}`,
      ),
    );
  }
});

const DEBIAN = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION_CODENAME=bookworm
ID=debian
`;
const UBUNTU = `PRETTY_NAME="Ubuntu 24.04.1 LTS"
VERSION_ID="24.04"
VERSION_CODENAME=noble
ID=ubuntu
ID_LIKE=debian
`;

Deno.test("parseOsRelease() and guestFamily(): Debian, Ubuntu, derivatives, and what is refused", () => {
  const debian = parseOsRelease(DEBIAN);
  assert.deepEqual(debian, {
    id: "debian",
    idLike: [],
    versionId: "12",
    codename: "bookworm",
    prettyName: "Debian GNU/Linux 12 (bookworm)",
  });
  assert.equal(guestFamily(debian), "debian");
  assert.equal(guestFamily(parseOsRelease(UBUNTU)), "ubuntu");
  // A derivative says whose it is.
  assert.equal(
    guestFamily(parseOsRelease("ID=linuxmint\nID_LIKE='ubuntu debian'\n")),
    "ubuntu",
  );
  const alpine = parseOsRelease(
    'NAME="Alpine Linux"\nID=alpine\nPRETTY_NAME="Alpine Linux v3.20"\n',
  );
  assert.equal(alpine.prettyName, "Alpine Linux v3.20");
  assert.equal(guestFamily(alpine), undefined);
  assert.equal(guestFamily(parseOsRelease('ID="fedora"\n')), undefined);
});

Deno.test("guestPackages(): Debian's list, Ubuntu's kernel, extras once", () => {
  const debian = guestPackages("debian", ["make", "sudo"]);
  assert.ok(debian.includes("linux-image-amd64"));
  assert.ok(debian.includes("systemd-sysv"));
  assert.equal(debian.filter((p) => p === "sudo").length, 1);
  assert.equal(debian.at(-1), "make");
  const ubuntu = guestPackages("ubuntu", []);
  assert.ok(ubuntu.includes("linux-image-virtual"));
  assert.ok(!ubuntu.includes("linux-image-amd64"));
});

Deno.test("checkRunnerUser(): runner must be uid 1001, and 1001 free for it", () => {
  const base = "root:x:0:0:root:/root:/bin/bash\n";
  assert.equal(checkRunnerUser(base), undefined);
  assert.equal(
    checkRunnerUser(`${base}runner:x:1001:1001::/home/runner:/bin/bash\n`),
    undefined,
  );
  assert.equal(
    checkRunnerUser(`${base}runner:x:1000:1000::/home/runner:/bin/bash\n`),
    "its user runner has uid 1000; Forrest's jobs run as runner with uid 1001",
  );
  assert.equal(
    checkRunnerUser(`${base}ci:x:1001:1001::/home/ci:/bin/sh\n`),
    "uid 1001 is taken by its user ci; Forrest's jobs run as runner with uid 1001",
  );
});

Deno.test("ociImageName(): the repository and tag, or the layout's or archive's name", () => {
  const name = (text: string) => ociImageName(parseOciSource(text, "/w"));
  assert.equal(name("docker://debian:bookworm"), "oci-debian-bookworm");
  assert.equal(name("docker://ghcr.io/acme/ci/base:1.2"), "oci-base-1.2");
  assert.equal(
    name(`docker://debian@sha256:${"ab".repeat(32)}`),
    `oci-debian-${"ab".repeat(6)}`,
  );
  assert.equal(name("oci:layout:v1"), "oci-layout-v1");
  assert.equal(name("oci:/srv/images/layout"), "oci-layout");
  assert.equal(name("oci-archive:/tmp/app.tar"), "oci-app");
  assert.equal(name("docker-archive:build/app.tar:app:2"), "oci-app-2");
  assert.equal(name("oci:../odd name!"), "oci-odd-name-");
});
