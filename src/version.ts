/** Forrest's version, from deno.json, so that there is one place to bump it. */

import meta from "../deno.json" with { type: "json" };

export const VERSION: string = meta.version;

/** `forrest 0.1.0 (deno 2.9.6, x86_64-unknown-linux-gnu)` */
export function versionLine(): string {
  return `forrest ${VERSION} (deno ${Deno.version.deno}, ${Deno.build.target})`;
}
