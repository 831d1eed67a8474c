/**
 * ETags of GitHub listings by URL, each with what Forrest read from that
 * listing. A request with `If-None-Match: <etag>` that GitHub answers
 * `304 Not Modified` costs nothing of the installation's rate limit, and
 * its answer is the value kept here. Bounded: when full, the entry used
 * least recently goes (runs end, and their listings are not asked again).
 */

export interface EtagEntry<T> {
  readonly etag: string;
  readonly value: T;
}

export class EtagCache<T> {
  readonly #entries = new Map<string, EtagEntry<T>>();
  readonly #limit: number;

  /** Keeps at most `limit` URLs. */
  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(
        `Cannot keep ETags: limit must be a positive integer, found ${limit}`,
      );
    }
    this.#limit = limit;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The entry of a URL, which becomes the most recently used. */
  get(url: string): EtagEntry<T> | undefined {
    const entry = this.#entries.get(url);
    if (entry === undefined) return undefined;
    this.#entries.delete(url);
    this.#entries.set(url, entry);
    return entry;
  }

  /** Remembers a URL's ETag and value, forgetting the oldest if full. */
  set(url: string, etag: string, value: T): void {
    this.#entries.delete(url);
    this.#entries.set(url, { etag, value });
    while (this.#entries.size > this.#limit) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
  }

  delete(url: string): void {
    this.#entries.delete(url);
  }
}
