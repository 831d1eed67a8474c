/**
 * Where a run's Unix sockets live. Linux limits a socket's path to 107
 * bytes, and a run directory is far deeper than that allows: GitHub allows
 * owners of 39 bytes and repositories of 100, and machine and runner names
 * come on top. So each run keeps its sockets in a short folder of its own,
 * `sockets/<16 hex>/` under base_dir, named by the SHA-256 of the run
 * directory's place below `runs/` (`<owner>/<repo>/<machine>/<runner>`):
 * its length depends on base_dir alone, and everyone who knows the run
 * directory (qemu's command line, `forrest shell`, crash recovery) finds it,
 * however base_dir is spelled.
 */

import { createHash } from "node:crypto";
import { join, relative, resolve } from "node:path";

/** Linux limits Unix socket paths to 108 bytes, the final NUL included. */
export const MAX_SOCKET_PATH = 107;

/**
 * The sockets of a run, in its socket folder. Every name is at most
 * MAX_SOCKET_NAME bytes long, so that a new one never makes a base_dir
 * too long that was fine before.
 */
export const RUN_SOCKETS = Object.freeze({
  /** The second serial port: a root shell (`forrest shell`). */
  shell: "shell.sock",
  /** qemu's control socket. */
  qmp: "qmp.sock",
  /** swtpm's control socket, which qemu's TPM connects to. */
  tpm: "tpm.sock",
});

export type RunSocket = keyof typeof RUN_SOCKETS;

/** The longest name a run's socket may have. */
export const MAX_SOCKET_NAME = 16;

const SOCKETS_FOLDER = "sockets";
/** 64 bits: no two runs meet by chance. */
const HASH_LENGTH = 16;

/**
 * The longest base_dir (in bytes, made absolute) whose runs' sockets fit:
 * `BASE/sockets/<16 hex>/<name>` within MAX_SOCKET_PATH.
 */
export const MAX_BASE_DIR = MAX_SOCKET_PATH -
  `/${SOCKETS_FOLDER}/`.length - HASH_LENGTH - "/".length - MAX_SOCKET_NAME;

/**
 * The socket folder of the run directory `runDir`
 * (`BASE/runs/<owner>/<repo>/<machine>/<runner>`): `BASE/sockets/<16 hex>`,
 * absolute, because qemu runs in the run directory.
 */
export function runSocketDir(runDir: string): string {
  const path = resolve(runDir);
  const baseDir = resolve(path, "../../../../..");
  const place = relative(join(baseDir, "runs"), path);
  const hash = createHash("sha256").update(place).digest("hex");
  return join(baseDir, SOCKETS_FOLDER, hash.slice(0, HASH_LENGTH));
}

/**
 * Why `baseDir` is too long for the sockets of runs below it, or undefined
 * when it is not.
 */
export function checkSocketBaseDir(baseDir: string): string | undefined {
  const length = new TextEncoder().encode(resolve(baseDir)).length;
  if (length <= MAX_BASE_DIR) return undefined;
  return `"${resolve(baseDir)}" is ${length} bytes long, too long for the ` +
    `Unix sockets of the runs below it (at most ${MAX_BASE_DIR} bytes, as ` +
    `Linux limits socket paths to ${MAX_SOCKET_PATH}): choose a shorter base_dir`;
}
