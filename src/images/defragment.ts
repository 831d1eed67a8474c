/**
 * Keeping persisted images quick to fork. A persist makes the run's reflink
 * fork the machine's image, and every random write the job made split the
 * fork's extents: run after run the image gains extents, and a reflink
 * costs time per extent (~8 µs here), so forking a 4 GiB image persisted
 * 50 times took seconds instead of milliseconds. Rewriting the image as a
 * plain copy brings it back to a few hundred extents at most.
 *
 * Data the job scattered into the image's holes stays scattered in a
 * hole-preserving copy (one extent per island), so the copy also fills the
 * smallest holes between data with zeros until few pieces remain: the guest
 * reads the same bytes, the host stores more of them.
 *
 * The rewrite is slow (it copies every allocated byte), so it runs after a
 * run has ended, never on a job's path; it keeps persistFork()'s crash
 * safety (temp file beside the image, fsync, rename) and never loses the
 * image: any failure is logged and leaves the fragmented one in place.
 */

import { getLogger } from "@logtape/logtape";
import { dirname } from "node:path";
import { fsync, run, runChecked } from "../host/mod.ts";
import { errorText } from "../log/mod.ts";
import {
  MACHINE_IMAGE_MODE,
  persistTempPath,
  withImageLock,
} from "./persist.ts";

/**
 * Extents above which a persisted image is rewritten (plus one per 128 MiB
 * of data: btrfs's extents are no larger, so a large image as compact as
 * it gets is not rewritten again and again). Measured on a loop-mounted
 * btrfs (bench/persist_fork_bench.ts): a reflink of ~2,000 extents took
 * 40 ms with a cold cache, too close to the 50 ms a fork may take; 1,000
 * leave room for slower disks. One run that writes 1% of a 4 GiB image at
 * random adds ~20,000, so such runs compact at every persist, while runs
 * that write little let several persists pass between rewrites.
 */
export const DEFRAGMENT_THRESHOLD = 1_000;

const LARGEST_EXTENT = 128 * 1024 * 1024;

/**
 * File systems where forks are reflinks and so inherit the image's extents.
 * Elsewhere a fork is a qcow2 overlay, persisted by a fresh sequential
 * conversion: nothing to compact.
 */
const REFLINK_FILE_SYSTEMS = new Set(["btrfs", "xfs"]);

const COPY_CHUNK = 8 * 1024 * 1024;

/** The steps of defragmentImage(), for tests that crash or race there. */
export type DefragmentStep =
  | "copying"
  | "copied"
  | "synced"
  | "renaming"
  | "renamed";

export interface DefragmentOptions {
  /** Extents above which the image is rewritten; DEFRAGMENT_THRESHOLD by default. */
  readonly threshold?: number;
  /**
   * Pieces of data the copy may keep, at most: the smallest holes between
   * them are filled until no more remain. Half of `threshold` by default,
   * so that several light persists pass before the next rewrite.
   */
  readonly pieces?: number;
  /**
   * Share of the file system that must stay free once the copy is written
   * (0.1 by default): running jobs write into their forks on the same file
   * system, and a rewrite must not take their room.
   */
  readonly keepFree?: number;
  /** Stops the copy (at shutdown); the image stays as it is. */
  readonly signal?: AbortSignal;
  /**
   * Called before each step; tests crash or persist here (not at
   * "renaming", which runs under the image's lock).
   */
  readonly beforeStep?: (step: DefragmentStep) => void | Promise<void>;
}

export interface DefragmentResult {
  /**
   * - `rewritten`: the image is a compact copy now;
   * - `compact`: few enough extents, left alone;
   * - `no-reflink`: not on a reflink file system, left alone;
   * - `missing`: no image at that path (set aside, say), nothing to do;
   * - `no-space`: the copy would leave too little free space; left alone;
   * - `superseded`: a persist replaced the image during the copy, and the
   *   copy (of the older image) was thrown away;
   * - `aborted`: the signal stopped it; left alone;
   * - `failed`: see `error`; left alone.
   */
  readonly outcome:
    | "rewritten"
    | "compact"
    | "no-reflink"
    | "missing"
    | "no-space"
    | "superseded"
    | "aborted"
    | "failed";
  /** The image's extents when counted. */
  readonly extentsBefore: number | undefined;
  /** The copy's extents when one was made. */
  readonly extentsAfter: number | undefined;
  /** Zeros written into the image's holes, in bytes, when copied. */
  readonly filled: number | undefined;
  /** Time spent, waiting for another rewrite included. */
  readonly seconds: number;
  readonly error?: string;
}

type Outcome = Omit<DefragmentResult, "seconds">;

/**
 * One rewrite at a time in this process: each needs the image's size again
 * in free space and a disk's worth of I/O, and two at once would both pass
 * the free space check on the same room.
 */
let queue: Promise<unknown> = Promise.resolve();

/**
 * Rewrites the image at `image` as a compact copy when it has more than
 * `threshold` extents (and one per 128 MiB of data): its data, and the
 * smallest holes between, copied to a temp file beside it (mode 0600, the
 * image's times), fsync, then, if the image is still the file that was
 * copied, rename over it. Never throws: a failure is logged as a warning
 * and leaves the image as it was.
 *
 * Runs that forked the image before keep their reflinks of the old extents;
 * a fork made during the copy forks the old, complete file. The image's
 * mtime is kept, so choosing between a machine's image and its base
 * (`use_base = "if_newer"`) decides as before; its inode changes.
 */
export function defragmentImage(
  image: string,
  options: DefragmentOptions = {},
): Promise<DefragmentResult> {
  const started = performance.now();
  const result = queue.then(() => rewriteIfFragmented(image, options)).then(
    (outcome) => ({
      ...outcome,
      seconds: (performance.now() - started) / 1000,
    }),
  );
  queue = result.catch(() => {});
  return result;
}

async function rewriteIfFragmented(
  image: string,
  options: DefragmentOptions,
): Promise<Outcome> {
  const log = getLogger(["forrest", "persist"]);
  const { signal } = options;
  const threshold = options.threshold ?? DEFRAGMENT_THRESHOLD;
  const step = async (name: DefragmentStep) => await options.beforeStep?.(name);
  const counts: {
    extentsBefore: number | undefined;
    extentsAfter: number | undefined;
    filled: number | undefined;
  } = { extentsBefore: undefined, extentsAfter: undefined, filled: undefined };
  let temp: string | undefined;
  // The copy reads this descriptor, not the path, and its inode cannot be
  // freed and reused while it is open: the rename check compares inodes.
  let source: Deno.FsFile | undefined;
  try {
    signal?.throwIfAborted();
    try {
      source = await Deno.open(image, { read: true });
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        return { outcome: "missing", ...counts };
      }
      throw error;
    }
    const copied = await source.stat();
    const fs = await fileSystemOf(image, signal);
    if (!REFLINK_FILE_SYSTEMS.has(fs.type)) {
      return { outcome: "no-reflink", ...counts };
    }
    // Mapped by path: if a persist replaced the image since it was opened,
    // the map is another file's, and the rename check throws the copy away.
    const extents = await dataExtents(image, signal);
    counts.extentsBefore = extents.length;
    const allowed = threshold +
      Math.ceil((copied.blocks ?? 0) * 512 / LARGEST_EXTENT);
    if (extents.length <= allowed) return { outcome: "compact", ...counts };
    const plan = planCopy(
      extents,
      copied.size,
      options.pieces ?? Math.floor(threshold / 2),
    );
    counts.filled = plan.filled;
    const keepFree = Math.ceil((options.keepFree ?? 0.1) * fs.size);
    if (fs.available - plan.bytes < keepFree) {
      log.warn(
        "{image} has {extents} extents, which slows its forks, but is not " +
          "rewritten: the copy ({needed} MiB) would leave less than {keep} MiB free",
        {
          image,
          extents: extents.length,
          needed: mib(plan.bytes),
          keep: mib(keepFree),
        },
      );
      return { outcome: "no-space", ...counts };
    }
    temp = persistTempPath(image);
    // Made with the image's mode from the start: no reader gets in through
    // a wider one.
    const target = await Deno.open(temp, {
      write: true,
      createNew: true,
      mode: MACHINE_IMAGE_MODE,
    });
    try {
      await step("copying");
      await copyRanges(source, target, plan.ranges, copied.size, signal);
      await step("copied");
      await Deno.chmod(temp, MACHINE_IMAGE_MODE); // whatever the umask left
      // After the last write, which set the mtime to now.
      await target.utime(
        copied.atime ?? new Date(),
        copied.mtime ?? new Date(),
      );
      await target.sync();
    } finally {
      target.close();
    }
    await step("synced");
    counts.extentsAfter = (await dataExtents(temp, signal)).length;
    if (counts.extentsAfter >= extents.length) {
      throw new Error(
        `the copy has ${counts.extentsAfter} extents, no fewer than the image`,
      );
    }
    signal?.throwIfAborted();
    const replaced = await withImageLock(image, async () => {
      const now = await Deno.stat(image).catch(() => undefined);
      if (now === undefined || !sameFile(now, copied)) return true;
      await step("renaming");
      await Deno.rename(temp!, image);
      return false;
    });
    if (replaced) {
      log.info(
        "{image} was replaced while a compact copy of it was written; " +
          "the copy is thrown away",
        { image },
      );
      return { outcome: "superseded", ...counts };
    }
    temp = undefined;
    await step("renamed");
    await fsync(dirname(image));
    log.info(
      "Rewrote {image} from {before} extents to {after} ({filled} MiB of holes filled)",
      {
        image,
        before: counts.extentsBefore,
        after: counts.extentsAfter,
        filled: mib(plan.filled),
      },
    );
    return { outcome: "rewritten", ...counts };
  } catch (error) {
    if (signal?.aborted) return { outcome: "aborted", ...counts };
    log.warn(
      "Cannot rewrite {image} compactly; it stays as it is: {error}",
      { image, error: errorText(error) },
    );
    return { outcome: "failed", ...counts, error: errorText(error) };
  } finally {
    source?.close();
    if (temp !== undefined) await Deno.remove(temp).catch(() => {});
  }
}

/** The same file, unchanged: what a rename may replace. */
function sameFile(a: Deno.FileInfo, b: Deno.FileInfo): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size &&
    a.mtime?.getTime() === b.mtime?.getTime();
}

interface FileSystem {
  /** As stat(1) names it: "btrfs", "xfs", "ext2/ext3", "tmpfs", … */
  readonly type: string;
  /** Bytes an unprivileged writer may still use. */
  readonly available: number;
  readonly size: number;
}

async function fileSystemOf(
  path: string,
  signal: AbortSignal | undefined,
): Promise<FileSystem> {
  const out = await runChecked(
    "stat",
    ["--file-system", "--format=%T %a %b %S", "--", path],
    signal === undefined ? {} : { signal },
  );
  const [type = "", available, blocks, blockSize] = out.trim().split(/\s+/);
  return {
    type,
    available: Number(available) * Number(blockSize),
    size: Number(blocks) * Number(blockSize),
  };
}

/** Bytes `start` (inclusive) to `end` (exclusive) of a file. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Where the file's data lies, one range per extent as FIEMAP reports it
 * (through filefrag, from e2fsprogs): what a reflink walks, one by one.
 * filefrag's own summary is no use here: it counts only breaks in the
 * physical layout, so islands of data between holes, written one after
 * another on the disk, count as one.
 *
 * @throws {SyntaxError} when filefrag's output is not what it should be
 */
export async function dataExtents(
  path: string,
  signal?: AbortSignal,
): Promise<ByteRange[]> {
  // -s syncs first (dirty data has no extent yet); -b1 counts in bytes.
  const args = ["-s", "-v", "-b1", "--", path];
  const result = await run(
    "filefrag",
    args,
    signal === undefined ? {} : { signal },
  );
  const text = new TextDecoder().decode(result.stdout);
  if (result.code !== 0 || !/ extents? found\s*$/.test(text)) {
    throw new SyntaxError(
      `Cannot map the extents of "${path}": filefrag exited ${result.code}: ${
        (result.stderr || text).trim().split("\n").slice(-2).join("; ")
      }`,
    );
  }
  const extents: ByteRange[] = [];
  for (const line of text.split("\n")) {
    const match = /^\s*\d+:\s*(\d+)\.\.\s*(\d+):/.exec(line);
    if (match) {
      extents.push({ start: Number(match[1]), end: Number(match[2]) + 1 });
    }
  }
  return extents;
}

/** The file's extents, as dataExtents() finds them. */
export async function countExtents(
  path: string,
  signal?: AbortSignal,
): Promise<number> {
  return (await dataExtents(path, signal)).length;
}

/** What to copy: ranges holding all data, and what that costs. */
export interface CopyPlan {
  readonly ranges: ByteRange[];
  /** Bytes the copy writes. */
  readonly bytes: number;
  /** Of those, bytes of holes written as zeros. */
  readonly filled: number;
}

/**
 * The ranges to copy for at most `pieces` pieces of data: extents that
 * touch are joined, then the smallest holes between them filled (so the
 * fewest zeros are written) until few enough pieces remain. A piece is
 * written in one go, so the file system lays it out as one extent (or a
 * few, btrfs's extents are at most 128 MiB).
 */
export function planCopy(
  extents: readonly ByteRange[],
  size: number,
  pieces: number,
): CopyPlan {
  const joined: ByteRange[] = [];
  for (const extent of [...extents].sort((a, b) => a.start - b.start)) {
    const start = Math.min(extent.start, size);
    const end = Math.min(extent.end, size);
    if (end <= start) continue;
    const last = joined.at(-1);
    if (last !== undefined && start <= last.end) {
      joined[joined.length - 1] = {
        start: last.start,
        end: Math.max(last.end, end),
      };
    } else {
      joined.push({ start, end });
    }
  }
  // Hole i lies between piece i and piece i + 1.
  const holes = joined.slice(1).map((piece, i) => ({
    i,
    size: piece.start - joined[i]!.end,
  }));
  holes.sort((a, b) => a.size - b.size || a.i - b.i);
  const fill = new Set(
    holes.slice(0, Math.max(0, joined.length - Math.max(1, pieces))).map((h) =>
      h.i
    ),
  );
  const ranges: ByteRange[] = [];
  let filled = 0;
  for (const [i, piece] of joined.entries()) {
    const last = ranges.at(-1);
    if (last !== undefined && fill.has(i - 1)) {
      filled += piece.start - last.end;
      ranges[ranges.length - 1] = { start: last.start, end: piece.end };
    } else {
      ranges.push(piece);
    }
  }
  const bytes = ranges.reduce((sum, r) => sum + r.end - r.start, 0);
  return { ranges, bytes, filled };
}

/**
 * Copies `ranges` of `from` into `to` (holes of `from` come out as zeros)
 * and gives `to` the size `size`; the rest of `to` stays a hole.
 */
async function copyRanges(
  from: Deno.FsFile,
  to: Deno.FsFile,
  ranges: readonly ByteRange[],
  size: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  await to.truncate(size);
  const buffer = new Uint8Array(COPY_CHUNK);
  for (const range of ranges) {
    for (let at = range.start; at < range.end;) {
      signal?.throwIfAborted();
      const chunk = buffer.subarray(0, Math.min(COPY_CHUNK, range.end - at));
      await from.seek(at, Deno.SeekMode.Start);
      let got = 0;
      while (got < chunk.length) {
        const n = await from.read(chunk.subarray(got));
        if (n === null) break; // shrunk meanwhile: the rename check catches it
        got += n;
      }
      chunk.fill(0, got);
      await to.seek(at, Deno.SeekMode.Start);
      for (let put = 0; put < chunk.length;) {
        put += await to.write(chunk.subarray(put));
      }
      at += chunk.length;
    }
  }
}

function mib(bytes: number): number {
  return Math.round(bytes / 1024 ** 2);
}
