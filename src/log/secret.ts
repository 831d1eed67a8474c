/**
 * A value that must never reach a log, a status page or an error message.
 *
 * Holding secrets (tokens, webhook secrets, JIT configs) in this wrapper
 * rather than as plain strings means that string interpolation, JSON and
 * Deno's inspector all print `[redacted]`; only `reveal()` gives the value,
 * which makes every place that needs it easy to find.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The secret itself; call it only where the value leaves the process. */
  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return "[redacted]";
  }

  toJSON(): string {
    return "[redacted]";
  }

  [Symbol.for("Deno.customInspect")](): string {
    return "[redacted]";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[redacted]";
  }
}
