/**
 * Per-repository CI users (forgejo-kvm-runner's model, product.md §12):
 * user `<owner>-<repo>-ci` (config/names.ts) owns the packages a
 * repository's jobs push, and each job gets a fresh `write:package` token
 * of it. Forgejo makes tokens only for a password login (Basic auth; a
 * token, even an admin's with Sudo, is refused), so Forrest sets each CI
 * user's password itself and keeps it here:
 * `base_dir/forgejo/<instance>/ci-users.json`, mode 0600. The password is
 * written before the user is made or changed, so that a crash in between
 * loses nothing: the forge checks the user exists on first use in each
 * process, and makes it then with the password kept.
 */

import { Buffer } from "node:buffer";
import { join } from "node:path";
import { fsync } from "../../host/mod.ts";
import { Secret } from "../../log/mod.ts";

/** A random password for a CI user: 32 bytes, hex. */
export function newPassword(): Secret {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return new Secret(Buffer.from(bytes).toString("hex"));
}

/** The passwords of one instance's CI users, on disk. */
export class CiUserStore {
  readonly #file: string;
  #passwords: Map<string, string> | undefined;
  /** Writes one after another, so none is lost. */
  #writing: Promise<void> = Promise.resolve();

  /** `dir` is the instance's state folder, made (0700) on first write. */
  constructor(dir: string) {
    this.#file = join(dir, "ci-users.json");
  }

  async password(login: string): Promise<Secret | undefined> {
    const value = (await this.#load()).get(login);
    return value === undefined ? undefined : new Secret(value);
  }

  async setPassword(login: string, password: Secret): Promise<void> {
    const passwords = await this.#load();
    passwords.set(login, password.reveal());
    const text = JSON.stringify(Object.fromEntries(passwords), null, 2);
    const write = this.#writing.then(() => this.#write(text));
    this.#writing = write.catch(() => {});
    await write;
  }

  async #load(): Promise<Map<string, string>> {
    if (this.#passwords) return this.#passwords;
    let text: string;
    try {
      text = await Deno.readTextFile(this.#file);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      return this.#passwords ??= new Map();
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new Error(`Cannot read ${this.#file}: not JSON`);
    }
    const passwords = new Map<string, string>();
    if (typeof parsed === "object" && parsed !== null) {
      for (const [login, value] of Object.entries(parsed)) {
        if (typeof value === "string") passwords.set(login, value);
      }
    }
    return this.#passwords ??= passwords;
  }

  /** Written whole to a new file, synced and renamed: never torn. */
  async #write(text: string): Promise<void> {
    const dir = join(this.#file, "..");
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
    const temporary = `${this.#file}.tmp`;
    await Deno.writeTextFile(temporary, text, { mode: 0o600 });
    await Deno.chmod(temporary, 0o600);
    await fsync(temporary);
    await Deno.rename(temporary, this.#file);
    await fsync(dir);
  }
}
