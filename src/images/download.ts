/**
 * Downloads that are checked before they are used: streamed to a temp file
 * while hashed, compared with the expected digest, then renamed into place.
 * A failed or interrupted download leaves nothing under the final name.
 */

import { createHash } from "node:crypto";

export interface DownloadOptions {
  /** "sha256" or "sha512" and the expected hex digest. */
  readonly digest: {
    readonly algorithm: "sha256" | "sha512";
    readonly hex: string;
  };
  readonly signal?: AbortSignal;
  /** Bytes so far and in all (when the server says), for a progress bar. */
  readonly onProgress?: (done: number, total: number | undefined) => void;
}

export class DownloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DownloadError";
  }
}

export async function download(
  url: string,
  dest: string,
  options: DownloadOptions,
): Promise<void> {
  const response = await fetch(
    url,
    options.signal ? { signal: options.signal } : {},
  );
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new DownloadError(`Cannot download ${url}: HTTP ${response.status}`);
  }
  const total = Number(response.headers.get("content-length")) || undefined;
  const hash = createHash(options.digest.algorithm);
  const temp = `${dest}.part`;
  const file = await Deno.open(temp, {
    write: true,
    create: true,
    truncate: true,
  });
  let done = 0;
  try {
    for await (const chunk of response.body) {
      hash.update(chunk);
      let rest = chunk;
      while (rest.length > 0) rest = rest.subarray(await file.write(rest));
      done += chunk.length;
      options.onProgress?.(done, total);
    }
    await file.sync();
  } catch (error) {
    file.close();
    await Deno.remove(temp).catch(() => {});
    throw error;
  }
  file.close();
  const actual = hash.digest("hex");
  if (actual !== options.digest.hex.toLowerCase()) {
    await Deno.remove(temp);
    throw new DownloadError(
      `${url} does not match its ${options.digest.algorithm}: expected ${options.digest.hex}, got ${actual}`,
    );
  }
  await Deno.rename(temp, dest);
}

/** Fetches a small text file (a checksum list). */
export async function fetchText(
  url: string,
  signal?: AbortSignal,
): Promise<string> {
  const response = await fetch(url, signal ? { signal } : {});
  if (!response.ok) {
    await response.body?.cancel();
    throw new DownloadError(`Cannot download ${url}: HTTP ${response.status}`);
  }
  return await response.text();
}
