/**
 * Serving the API on every `server.listen` address: Unix sockets (behind
 * nginx, as the original) and TCP. A socket file left by a Forrest that
 * died is removed; one that still answers is another Forrest, and an error.
 */

import { formatListen, type ListenAddress } from "../config/mod.ts";
import { pathExists } from "../host/mod.ts";

export interface Listening {
  readonly addresses: readonly string[];
  close(): Promise<void>;
}

export class ListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ListenError";
  }
}

export async function listenAll(
  addresses: readonly ListenAddress[],
  socketMode: number,
  handler: (request: Request) => Response | Promise<Response>,
): Promise<Listening> {
  const servers: Deno.HttpServer[] = [];
  const names: string[] = [];
  const close = async () => {
    await Promise.all(servers.map((server) => server.shutdown()));
    for (const address of addresses) {
      if (address.kind === "unix") {
        await Deno.remove(address.path).catch(() => {});
      }
    }
  };
  try {
    for (const address of addresses) {
      if (address.kind === "unix") {
        await removeStaleSocket(address.path);
        servers.push(
          Deno.serve({ path: address.path, onListen: () => {} }, handler),
        );
        await Deno.chmod(address.path, socketMode);
      } else {
        servers.push(
          Deno.serve({
            hostname: address.hostname,
            port: address.port,
            onListen: () => {},
          }, handler),
        );
      }
      names.push(formatListen(address));
    }
  } catch (error) {
    await close();
    if (error instanceof ListenError) throw error;
    throw new ListenError(
      `Cannot listen on ${formatListen(addresses[servers.length]!)}: ${
        (error as Error).message
      }`,
    );
  }
  return { addresses: names, close };
}

async function removeStaleSocket(path: string): Promise<void> {
  if (!(await pathExists(path))) return;
  const info = await Deno.lstat(path);
  if (!info.isSocket) {
    throw new ListenError(
      `Cannot listen on unix:${path}: a file is in the way`,
    );
  }
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
  } catch {
    await Deno.remove(path); // nobody answers: left by a Forrest that died
    return;
  }
  throw new ListenError(
    `Cannot listen on unix:${path}: another process (a running Forrest?) is listening there`,
  );
}
