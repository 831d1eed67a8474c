/**
 * A task that runs now and then every `interval()` after it ends (the
 * poller, the janitor). Never two runs at once: run() while one is under
 * way returns that one. The interval is read anew each time, so a config
 * reload changes it.
 */
export class Periodic {
  readonly #task: () => Promise<void>;
  readonly #interval: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(task: () => Promise<void>, interval: () => number) {
    this.#task = task;
    this.#interval = interval;
  }

  run(): Promise<void> {
    clearTimeout(this.#timer);
    this.#running ??= this.#task().finally(() => {
      this.#running = undefined;
      if (!this.#stopped) {
        this.#timer = setTimeout(() => this.run(), this.#interval());
      }
    });
    return this.#running;
  }

  /**
   * The first run after one interval rather than now (a task that another
   * did the work of at start); nothing when a run is under way or due.
   */
  later(): void {
    if (this.#stopped || this.#running || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => this.run(), this.#interval());
  }

  /** No more runs; resolves once the one under way has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running?.catch(() => {});
    clearTimeout(this.#timer);
  }
}
