/**
 * A guest writes its boot log and its job's output into files on the host.
 * A job (of any pull request) that writes without end would fill base_dir
 * and stop every other run: past a limit, its VM is stopped.
 */

/** What the guard needs of a VM. */
export interface GuardedVm {
  stop(): Promise<unknown>;
}

export interface LogGuardOptions {
  /** Bytes any one file may reach. */
  readonly limit: number;
  /** Milliseconds between checks. */
  readonly interval: number;
  /** Told once, before the VM is stopped. */
  readonly onExceeded: (file: string, size: number) => void;
}

/** 1 GiB: far more than any build log, far less than a host's disk. */
export const LOG_LIMIT = 1024 ** 3;

/**
 * Watches `files` until stop(); tie it to the VM (QemuVm.attach) so that
 * it ends with it.
 */
export class LogGuard {
  readonly #files: readonly string[];
  readonly #vm: GuardedVm;
  readonly #options: LogGuardOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #checking: Promise<void> | undefined;
  #stopped = false;

  constructor(
    vm: GuardedVm,
    files: readonly string[],
    options: LogGuardOptions,
  ) {
    this.#vm = vm;
    this.#files = files;
    this.#options = options;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#checking = this.#check();
    }, this.#options.interval);
  }

  async #check(): Promise<void> {
    for (const file of this.#files) {
      const size = await Deno.stat(file).then((info) => info.size, () => 0);
      if (size > this.#options.limit) {
        this.#stopped = true;
        this.#options.onExceeded(file, size);
        // Not awaited: stopping the VM stops this guard, which awaits us.
        this.#vm.stop();
        return;
      }
    }
    this.#schedule();
  }

  /** Ends the watch; resolves once no check runs. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#checking;
  }
}
