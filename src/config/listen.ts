/** `server.listen` entries: `unix:PATH` or `HOST:PORT`. */

import { resolve } from "node:path";
import type { ListenAddress } from "./types.ts";

/**
 * Parses one listen address; a relative socket path lands in `baseDir`.
 *
 * @throws {SyntaxError} with what is wrong, for the config problem list
 */
export function parseListen(text: string, baseDir: string): ListenAddress {
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (path === "") throw new SyntaxError(`"${text}" names no socket path`);
    return { kind: "unix", path: resolve(baseDir, path) };
  }
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(
    text,
  );
  const port = Number(match?.[3]);
  if (!match || port < 1 || port > 65535) {
    throw new SyntaxError(
      `expected "unix:PATH" or "HOST:PORT" (port 1 to 65535), found "${text}"`,
    );
  }
  return { kind: "tcp", hostname: match[1] ?? match[2]!, port };
}

/** Writes an address back as it would appear in the config. */
export function formatListen(address: ListenAddress): string {
  if (address.kind === "unix") return `unix:${address.path}`;
  const host = address.hostname.includes(":")
    ? `[${address.hostname}]`
    : address.hostname;
  return `${host}:${address.port}`;
}
