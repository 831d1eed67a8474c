/**
 * What `forrest image build oci SOURCE` is given and finds: the source in
 * skopeo's transport syntax, the distribution in the unpacked root's
 * os-release, and the packages that make that root a Forrest guest. Pure:
 * build_oci.ts does the work.
 */

import { DEBIAN_PACKAGES } from "./debian_overlay.ts";

/** The transports Forrest takes, as skopeo names them. */
export const OCI_TRANSPORTS = [
  "docker://",
  "oci:",
  "oci-archive:",
  "docker-archive:",
] as const;

export interface OciSource {
  readonly transport: typeof OCI_TRANSPORTS[number];
  /** What follows the transport: a reference, or a path with a tag. */
  readonly reference: string;
  /** The source as skopeo takes it (local paths made absolute). */
  readonly skopeo: string;
}

/**
 * Reads SOURCE; a relative path of a local transport is taken from `cwd`,
 * as skopeo would, so that the build's own folder does not change it.
 */
export function parseOciSource(text: string, cwd: string): OciSource {
  const transport = OCI_TRANSPORTS.find((t) => text.startsWith(t));
  const reference = transport === undefined ? "" : text.slice(transport.length);
  if (transport === undefined || reference === "") {
    throw new Error(
      `SOURCE must be docker://REF, oci:DIR[:TAG], oci-archive:FILE or ` +
        `docker-archive:FILE, found ${JSON.stringify(text)}`,
    );
  }
  if (transport === "docker://" || reference.startsWith("/")) {
    return { transport, reference, skopeo: text };
  }
  return {
    transport,
    reference,
    skopeo: `${transport}${cwd.replace(/\/+$/, "")}/${reference}`,
  };
}

/**
 * The default name of an image built from `source` (base_dir/images/
 * NAME.img): `oci-` and the repository's last part and its tag, or the
 * layout folder's or archive's name.
 */
export function ociImageName(source: OciSource): string {
  let name: string;
  if (source.transport === "docker://") {
    const [repository, digest] = source.reference.split("@");
    const last = repository!.split("/").at(-1)!;
    name = digest === undefined ? last : `${last}-${digest.slice(-12)}`;
  } else {
    // skopeo splits a local reference at its first colon: oci:PATH[:TAG],
    // and an archive's PATH[:REFERENCE] (the image in a docker archive).
    const colon = source.reference.indexOf(":");
    const path = colon < 0
      ? source.reference
      : source.reference.slice(0, colon);
    const tag = colon < 0 ? undefined : source.reference.slice(colon + 1);
    const file = (path.split("/").filter((part) => part !== "").at(-1) ??
      "image").replace(/\.(tar|tgz|tar\.gz)$/, "");
    if (tag === undefined) name = file;
    else if (source.transport === "oci:") name = `${file}-${tag}`;
    else name = tag.split("/").at(-1)!.replace(/:/g, "-");
  }
  return `oci-${name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[-.]+/, "")}`;
}

/** The fields of os-release(5) Forrest reads. */
export interface OsRelease {
  readonly id: string;
  readonly idLike: readonly string[];
  readonly versionId: string | undefined;
  readonly codename: string | undefined;
  readonly prettyName: string;
}

/** Reads os-release(5): KEY=value lines, values maybe quoted. */
export function parseOsRelease(text: string): OsRelease {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!match) continue;
    let value = match[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.endsWith(quote)) {
      value = value.slice(1, -1).replace(/\\(["'$`\\])/g, "$1");
    }
    fields.set(match[1]!, value);
  }
  const id = (fields.get("ID") ?? "linux").toLowerCase();
  return {
    id,
    idLike: (fields.get("ID_LIKE") ?? "").toLowerCase().split(/\s+/)
      .filter((word) => word !== ""),
    versionId: fields.get("VERSION_ID"),
    codename: fields.get("VERSION_CODENAME"),
    prettyName: fields.get("PRETTY_NAME") ?? fields.get("NAME") ?? id,
  };
}

/** A distribution whose roots Forrest can make into guests. */
export type GuestFamily = "debian" | "ubuntu";

/**
 * Which supported family a root is of, or undefined: Debian and Ubuntu
 * (and their derivatives that say so in ID_LIKE) install what a guest
 * needs with apt, and Forrest's units are tested on their systemd.
 */
export function guestFamily(os: OsRelease): GuestFamily | undefined {
  if (os.id === "ubuntu" || os.idLike.includes("ubuntu")) return "ubuntu";
  if (os.id === "debian" || os.idLike.includes("debian")) return "debian";
  return undefined;
}

/**
 * What apt installs into the root: Debian's list for a Forrest image,
 * with Ubuntu's name for a kernel for virtual machines, plus `extra`.
 */
export function guestPackages(
  family: GuestFamily,
  extra: readonly string[],
): string[] {
  const base = family === "ubuntu"
    ? DEBIAN_PACKAGES.map((p) => p === "linux-image-amd64" ? KERNEL.ubuntu : p)
    : [...DEBIAN_PACKAGES];
  return [...new Set([...base, ...extra])];
}

const KERNEL: Readonly<Record<GuestFamily, string>> = {
  debian: "linux-image-amd64",
  // Ubuntu's kernel for virtual machines, with virtio and 9p.
  ubuntu: "linux-image-virtual",
};

/** The user Forrest's jobs run as, in every image (product.md §15). */
export const RUNNER_UID = 1001;

/**
 * What stands in the way of user `runner` with uid 1001 in an image's
 * /etc/passwd (undefined when nothing does: it is there, or free to add).
 */
export function checkRunnerUser(passwd: string): string | undefined {
  for (const line of passwd.split("\n")) {
    const [name, , uid] = line.split(":");
    if (name === undefined || uid === undefined) continue;
    if (name === "runner" && Number(uid) !== RUNNER_UID) {
      return `its user runner has uid ${uid}; Forrest's jobs run as runner with uid ${RUNNER_UID}`;
    }
    if (name !== "runner" && Number(uid) === RUNNER_UID) {
      return `uid ${RUNNER_UID} is taken by its user ${name}; Forrest's jobs run as runner with uid ${RUNNER_UID}`;
    }
  }
  return undefined;
}
