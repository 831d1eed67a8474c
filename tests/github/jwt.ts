/**
 * GitHub App keys and the app JWT, checked the way GitHub checks it, so that
 * the double refuses what GitHub would refuse.
 */

import {
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";

/** A new 2048-bit RSA key as PKCS#1 PEM, the format GitHub hands out. */
export function generateAppKey(): Promise<string> {
  return new Promise((resolve, reject) => {
    generateKeyPair("rsa", {
      modulusLength: 2048,
      publicKeyEncoding: { type: "spki", format: "pem" },
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
    }, (error, _publicKey, privateKey) => {
      if (error) reject(error);
      else resolve(privateKey);
    });
  });
}

/** The public half of a PEM private key. */
export function publicKeyOf(privateKeyPem: string): KeyObject {
  return createPublicKey(privateKeyPem);
}

/**
 * An RS256 JWT with these claims, for tests that need a JWT `@octokit/app`
 * would never make (expired, from another app, signed with another key).
 */
export function signAppJwt(
  privateKeyPem: string,
  claims: Record<string, unknown>,
): string {
  const encode = (value: unknown) =>
    base64Url(new TextEncoder().encode(JSON.stringify(value)));
  const unsigned = `${encode({ alg: "RS256", typ: "JWT" })}.${encode(claims)}`;
  const signature = sign(
    "RSA-SHA256",
    new TextEncoder().encode(unsigned),
    privateKeyPem,
  );
  return `${unsigned}.${base64Url(signature)}`;
}

/** How far a JWT's `iat` may be ahead of the clock, as GitHub allows. */
const SKEW_SECONDS = 60;

/**
 * Why GitHub would refuse this `Authorization` header for an app endpoint,
 * or undefined when it is a valid app JWT. The time messages are GitHub's
 * own: `@octokit/auth-app` matches them to correct clock skew.
 */
export function jwtProblem(
  authorization: string | null,
  appId: number,
  publicKey: KeyObject,
  now = Date.now() / 1000,
): string | undefined {
  const match = /^bearer\s+(\S+)$/i.exec(authorization ?? "");
  if (!match) return "A JSON web token could not be decoded";
  const parts = match[1]!.split(".");
  if (parts.length !== 3) return "A JSON web token could not be decoded";
  const [header, payload, signature] = parts as [string, string, string];
  let claims: Record<string, unknown>;
  try {
    const head = JSON.parse(base64UrlText(header));
    if (head.alg !== "RS256") return "A JSON web token could not be decoded";
    claims = JSON.parse(base64UrlText(payload));
  } catch {
    return "A JSON web token could not be decoded";
  }
  const signed = verify(
    "RSA-SHA256",
    new TextEncoder().encode(`${header}.${payload}`),
    publicKey,
    base64UrlBytes(signature),
  );
  if (!signed) return "A JSON web token could not be decoded";
  if (String(claims.iss) !== String(appId)) {
    return "Integration not found";
  }
  const { iat, exp } = claims;
  if (typeof iat !== "number" || iat > now + SKEW_SECONDS) {
    return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
  }
  if (typeof exp !== "number" || exp <= now) {
    return "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
  }
  if (exp - iat > 600) {
    return "'Expiration time' claim ('exp') is too far in the future";
  }
  return undefined;
}

function base64Url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-")
    .replaceAll("/", "_").replace(/=+$/, "");
}

function base64UrlBytes(text: string): Uint8Array {
  const base64 = text.replaceAll("-", "+").replaceAll("_", "/");
  const binary = atob(base64 + "=".repeat((4 - base64.length % 4) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function base64UrlText(text: string): string {
  return new TextDecoder().decode(base64UrlBytes(text));
}
