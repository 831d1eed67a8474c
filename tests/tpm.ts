/**
 * Raw TPM 2.0 commands for the TPM tests, so that neither host nor guest
 * needs tpm2-tools: the same bytes go to a guest's /dev/tpm0 (through
 * printf) and to a swtpm on the host.
 */

/** TPM2_ReadPublic of a persistent handle; no session needed. */
export function readPublic(handle: number): Uint8Array {
  const command = new Uint8Array(14);
  const view = new DataView(command.buffer);
  view.setUint16(0, 0x8001); // TPM_ST_NO_SESSIONS
  view.setUint32(2, command.length);
  view.setUint32(6, 0x173); // TPM_CC_ReadPublic
  view.setUint32(10, handle);
  return command;
}

/**
 * TPM2_EvictControl that removes a persistent object, authorized by the
 * owner hierarchy's (empty) password.
 */
export function evict(handle: number): Uint8Array {
  const command = new Uint8Array(35);
  const view = new DataView(command.buffer);
  view.setUint16(0, 0x8002); // TPM_ST_SESSIONS
  view.setUint32(2, command.length);
  view.setUint32(6, 0x120); // TPM_CC_EvictControl
  view.setUint32(10, 0x40000001); // TPM_RH_OWNER
  view.setUint32(14, handle);
  view.setUint32(18, 9); // authorization area size
  view.setUint32(22, 0x40000009); // TPM_RS_PW, empty nonce, attributes, password
  view.setUint32(31, handle); // persistentHandle
  return command;
}

/** The response code of a response, as hex. */
export function responseCode(hex: string): string {
  return hex.slice(12, 20);
}

/** A shell line that sends `command` to /dev/tpm0 and prints the response as hex. */
export function guestTpmCall(command: Uint8Array): string {
  const octal = Array.from(
    command,
    (b) => `\\${b.toString(8).padStart(3, "0")}`,
  )
    .join("");
  return `sudo sh -c 'exec 3<>/dev/tpm0; printf "${octal}" >&3; ` +
    `dd bs=4096 count=1 <&3 2>/dev/null | od -An -tx1 -v | tr -d " \\n"; echo'`;
}

export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Sends `command` to a swtpm serving a copy of `state` (a state folder, or
 * the original's single state file) and returns the response as hex.
 */
export async function hostTpmCall(
  state: string,
  command: Uint8Array,
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "forrest-tpm-" });
  let child: Deno.ChildProcess | undefined;
  try {
    const copied = await new Deno.Command("cp", {
      args: ["-a", state, `${dir}/state`],
    }).output();
    if (!copied.success) throw new Error(`cannot copy ${state}`);
    const server = `${dir}/server.sock`;
    child = new Deno.Command("swtpm", {
      args: [
        "socket",
        "--tpm2",
        "--tpmstate",
        (await Deno.stat(state)).isDirectory
          ? `dir=${dir}/state`
          : `backend-uri=file://${dir}/state`,
        "--server",
        `type=unixio,path=${server}`,
        "--ctrl",
        `type=unixio,path=${dir}/ctrl.sock`,
        "--flags",
        "startup-clear",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    let conn: Deno.UnixConn | undefined;
    for (let i = 0; !conn; i++) {
      conn = await Deno.connect({ transport: "unix", path: server }).catch(
        (error) => {
          if (i > 100) throw error;
          return undefined;
        },
      );
      if (!conn) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    try {
      await conn.write(command);
      const buffer = new Uint8Array(4096);
      let length = 0;
      // The header's size field says when the response is complete.
      while (length < 6 || length < new DataView(buffer.buffer).getUint32(2)) {
        const read = await conn.read(buffer.subarray(length));
        if (read === null) break;
        length += read;
      }
      return hex(buffer.subarray(0, length));
    } finally {
      conn.close();
    }
  } finally {
    if (child) {
      try {
        child.kill("SIGTERM");
      } catch {
        // exited already
      }
      await child.status;
    }
    await Deno.remove(dir, { recursive: true });
  }
}
