/**
 * Where an image came from, for `forrest image list`: written by each
 * build. Inside the image (`/usr/local/lib/forrest/build.json`, read back
 * with debugfs) for the images Forrest makes from a root, so that a
 * machine image persisted from one still says what its root is; beside
 * the image (`.NAME.build.json`, a hidden file) for a converted cloud
 * image, whose root partition debugfs cannot reach.
 */

import { basename, dirname, join } from "node:path";
import { z } from "zod";
import { readImageText } from "../vm/mod.ts";

export const BUILD_RECORD_PATH = "usr/local/lib/forrest/build.json";

const record = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("debian"),
    release: z.string(),
    method: z.enum(["debootstrap", "cloud"]),
    builtAt: z.string(),
  }),
  z.object({
    kind: z.literal("oci"),
    source: z.string(),
    digest: z.string(),
    distribution: z.string(),
    builtAt: z.string(),
  }),
]);

export type BuildRecord = z.infer<typeof record>;

/** One line for people: what the image was built from. */
export function describeBuild(build: BuildRecord): string {
  if (build.kind === "oci") {
    return `${build.source} (${
      build.digest.replace(/^(\w+:\w{12})\w*$/, "$1")
    }, ${build.distribution})`;
  }
  return build.method === "cloud"
    ? `debian ${build.release} cloud image`
    : `debian ${build.release}`;
}

/** Puts the record into a root that becomes an image. */
export async function writeBuildRecord(
  root: string,
  build: BuildRecord,
): Promise<void> {
  const path = join(root, BUILD_RECORD_PATH);
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeTextFile(path, `${JSON.stringify(build, null, 2)}\n`, {
    mode: 0o644,
  });
}

/** The hidden file beside `image` that holds a cloud image's record. */
export function buildRecordBeside(image: string): string {
  return join(dirname(image), `.${basename(image)}.build.json`);
}

/**
 * An image's record: inside it, else beside it; undefined for an image
 * Forrest did not build (or one of an older Forrest).
 */
export async function readBuildRecord(
  image: string,
): Promise<BuildRecord | undefined> {
  const text = await readImageText(image, `/${BUILD_RECORD_PATH}`) ??
    await Deno.readTextFile(buildRecordBeside(image)).catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const parsed = record.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
