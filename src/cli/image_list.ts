/** `forrest image list`: what images there are, how big, how old, from what. */

import { formatSize } from "../config/mod.ts";
import { describeBuild, type ImageEntry, listImages } from "../images/mod.ts";
import { hostSettings } from "./host_settings.ts";
import type { Output } from "./output.ts";
import { formatTable } from "./table.ts";

export interface ImageListFlags {
  readonly json?: boolean;
  readonly baseDir?: string;
  readonly config?: string;
}

export async function imageListCommand(
  flags: ImageListFlags,
  context: { output: Output; env: (name: string) => string | undefined },
  now = new Date(),
): Promise<number> {
  const host = await hostSettings({
    config: flags.config,
    baseDir: flags.baseDir,
    env: context.env,
  });
  const images = await listImages(host.baseDir, host.config);
  if (flags.json) {
    context.output.out(
      JSON.stringify(
        images.map((image) => ({
          ...image,
          modified: image.modified.toISOString(),
          derivesFrom: image.derivesFrom ?? null,
          build: image.build ?? null,
        })),
        null,
        2,
      ),
    );
    return 0;
  }
  if (images.length === 0) {
    context.output.err(
      `No images in ${host.baseDir} yet (forrest image build debian makes one)`,
    );
    return 0;
  }
  const rows = images.map((image: ImageEntry) => [
    image.path,
    image.kind,
    formatApprox(image.sizeOnDisk),
    formatApprox(image.size),
    age(now.getTime() - image.modified.getTime()),
    image.derivesFrom ?? (image.kind === "src" ? "-" : "(not in the config)"),
    image.build === undefined ? "-" : describeBuild(image.build),
    image.build === undefined
      ? "-"
      : age(now.getTime() - Date.parse(image.build.builtAt)),
  ]);
  for (
    const line of formatTable(
      [
        "IMAGE",
        "KIND",
        "ON DISK",
        "SIZE",
        "AGE",
        "DERIVES FROM",
        "BUILT FROM",
        "BUILT",
      ],
      rows,
      {
        align: [
          "left",
          "left",
          "right",
          "right",
          "right",
          "left",
          "left",
          "right",
        ],
      },
    )
  ) context.output.out(line);
  return 0;
}

/** 489M, 4G, 1.5G: one decimal at most, for people. */
function formatApprox(bytes: number): string {
  for (
    const [unit, size] of [
      ["T", 1024 ** 4],
      ["G", 1024 ** 3],
      ["M", 1024 ** 2],
      ["K", 1024],
    ] as const
  ) {
    if (bytes >= size) {
      const value = bytes / size;
      return `${
        value >= 10 || Number.isInteger(value)
          ? Math.round(value)
          : value.toFixed(1)
      }${unit}`;
    }
  }
  return formatSize(bytes);
}

function age(ms: number): string {
  const minutes = Math.max(0, Math.floor(ms / 60_000));
  if (minutes < 60) return `${minutes}m`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)}h`;
  return `${Math.floor(minutes / 1440)}d`;
}
