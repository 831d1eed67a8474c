/**
 * Run tokens: the secret each machine gets when it is created. The guest
 * finds it in config/run-token and shows it to the guest API, which knows the
 * run by it. A token is only ever held as a Secret and compared by digest in
 * constant time, so neither logs nor timing tell it.
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { Secret } from "../log/secret.ts";

const ALPHABET =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Characters of a run token: 32 of 62 is 190 bits. */
export const RUN_TOKEN_LENGTH = 32;

/**
 * A new run token: letters and digits only, so that templates and shell
 * scripts can carry it unquoted, as the original's could.
 */
export function newRunToken(): Secret {
  const chars: string[] = [];
  while (chars.length < RUN_TOKEN_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(64))) {
      // 248 = 4 * 62: bytes above it are dropped, so every letter is as likely.
      if (byte < 248 && chars.length < RUN_TOKEN_LENGTH) {
        chars.push(ALPHABET[byte % ALPHABET.length]!);
      }
    }
  }
  return new Secret(chars.join(""));
}

/** The SHA-256 of a token: what lookups compare, always 32 bytes. */
export function tokenDigest(token: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(token).digest());
}

/** Whether two digests are equal, in time that does not depend on them. */
export function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
