/**
 * The runs the guest API knows: each by its run token, with its artifact
 * stores and what is left of each store's quota. A run is added when its
 * machine is created and removed when the machine stops; after that its
 * token names nothing.
 */

import type { ArtifactStoreConfig } from "../config/mod.ts";
import type { Secret } from "../log/secret.ts";
import { sameDigest, tokenDigest } from "./run_token.ts";

/** Bytes one run may still upload to one store; shared by its uploads. */
export class Quota {
  #remaining: number;

  constructor(bytes: number) {
    this.#remaining = bytes;
  }

  get remaining(): number {
    return this.#remaining;
  }

  /** Takes `bytes` if that many are left; uploads take before they write. */
  take(bytes: number): boolean {
    if (bytes > this.#remaining) return false;
    this.#remaining -= bytes;
    return true;
  }

  /** Gives back what a failed upload took. */
  give(bytes: number): void {
    this.#remaining += bytes;
  }
}

/** One store of one run: `<RUNNER_NAME>` filled in. */
export interface RunStore {
  readonly name: string;
  readonly path: string;
  /** With a trailing slash. */
  readonly url: string;
  readonly quota: Quota;
  readonly tokenDigest: Uint8Array | undefined;
}

export interface GuestRun {
  readonly runner: string;
  readonly stores: readonly RunStore[];
  /** Uploads under way, and files stored: both are limited per run. */
  readonly uploads: { active: number; stored: number };
}

/** A store's folder for one run. */
export function storeFolder(path: string, runner: string): string {
  return path.replaceAll("<RUNNER_NAME>", runner);
}

/** A run's stores, its name put in for `<RUNNER_NAME>`. */
export function runStores(
  stores: readonly ArtifactStoreConfig[],
  runner: string,
): RunStore[] {
  const fill = (text: string) => storeFolder(text, runner);
  return stores.map((store) => {
    const url = fill(store.url);
    return {
      name: store.name,
      path: fill(store.path),
      url: url.endsWith("/") ? url : `${url}/`,
      quota: new Quota(store.quota),
      tokenDigest: store.token && tokenDigest(store.token.reveal()),
    };
  });
}

/**
 * The first store named `name` whose token is the one given, or that has
 * none (the original's rule: a tokenless store for every job can sit beside
 * a store of the same name for holders of a token).
 */
export function findStore(
  run: GuestRun,
  name: string,
  storeToken: string | undefined,
): RunStore | undefined {
  const given = storeToken === undefined ? undefined : tokenDigest(storeToken);
  return run.stores.find((store) =>
    store.name === name && (
      store.tokenDigest === undefined ||
      (given !== undefined && sameDigest(store.tokenDigest, given))
    )
  );
}

export class RunRegistry {
  readonly #runs = new Map<GuestRun, Uint8Array>();

  /** Adds a run; the returned function removes it (its token dies). */
  add(
    token: Secret,
    runner: string,
    stores: readonly ArtifactStoreConfig[],
  ): () => void {
    const run: GuestRun = {
      runner,
      stores: runStores(stores, runner),
      uploads: { active: 0, stored: 0 },
    };
    this.#runs.set(run, tokenDigest(token.reveal()));
    return () => this.#runs.delete(run);
  }

  /** The run whose token this is; every run's digest is compared. */
  find(token: string): GuestRun | undefined {
    const given = tokenDigest(token);
    let found: GuestRun | undefined;
    for (const [run, digest] of this.#runs) {
      if (sameDigest(digest, given)) found = run;
    }
    return found;
  }

  get size(): number {
    return this.#runs.size;
  }
}
