/**
 * The two config disks of a run, and what the job leaves on JOBDATA: the
 * `persist` token and the `exit-code` of its job script.
 */

import type { SetupTemplateContent, TemplateFiles } from "./template.ts";
import { readFatFile, writeFatImage } from "./fat.ts";

export const CIDATA_LABEL = "CIDATA";
export const JOBDATA_LABEL = "JOBDATA";

export interface ConfigDiskPaths {
  readonly cidata: string;
  /** Undefined when JOBDATA is written later (writeJobData). */
  readonly jobdata: string | undefined;
}

/** Writes CIDATA and JOBDATA from a rendered template. */
export async function writeConfigDisks(
  paths: ConfigDiskPaths,
  template: SetupTemplateContent,
): Promise<void> {
  await writeFatImage(paths.cidata, CIDATA_LABEL, encode(template.cloudInit));
  if (paths.jobdata !== undefined) {
    await writeJobData(paths.jobdata, template);
  }
}

/** Writes JOBDATA from a rendered template's `job-config/`. */
export async function writeJobData(
  path: string,
  template: SetupTemplateContent,
): Promise<void> {
  await writeFatImage(path, JOBDATA_LABEL, encode(template.jobConfig));
}

function encode(files: TemplateFiles): Map<string, Uint8Array> {
  const encoder = new TextEncoder();
  return new Map(
    [...files].map(([name, text]) => [name, encoder.encode(text)]),
  );
}

export interface JobResult {
  /** The `persist` file as the job wrote it, to compare with the token. */
  readonly persist: Uint8Array | undefined;
  /** The job script's exit code, when the guest wrote a valid one. */
  readonly exitCode: number | undefined;
}

/**
 * What the host reads of a JOBDATA disk, per file: a token or an exit code
 * is far smaller.
 */
export const JOB_RESULT_MAX_BYTES = 64 * 1024;
/** mcopy reads a 1 MiB disk in milliseconds; more is a crafted one. */
const JOB_RESULT_TIMEOUT = 30_000;

/**
 * Reads what the job left on JOBDATA after the VM has stopped. The guest
 * could write anything on that disk, its file system included: files are
 * read to stdout (never to host paths) and within limits.
 *
 * @throws {RangeError} for a `persist` or `exit-code` larger than
 *   JOB_RESULT_MAX_BYTES, and whatever readFatFile() throws for a disk
 *   mcopy cannot read
 */
export async function readJobResult(jobdata: string): Promise<JobResult> {
  const limits = {
    maxBytes: JOB_RESULT_MAX_BYTES,
    timeoutMs: JOB_RESULT_TIMEOUT,
  };
  const persist = await readFatFile(jobdata, "persist", limits);
  const exitText = await readFatFile(jobdata, "exit-code", limits);
  return {
    persist,
    exitCode: exitText && parseExitCode(new TextDecoder().decode(exitText)),
  };
}

/** "3\n" → 3; anything but a whole number from 0 to 255 → undefined. */
export function parseExitCode(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,3}$/.test(trimmed)) return undefined;
  const code = Number(trimmed);
  return code <= 255 ? code : undefined;
}
