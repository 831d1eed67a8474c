/** Where a command's output goes; the real one writes to stdout and stderr. */
export interface Output {
  /** A line of the command's result, to stdout. */
  out(line: string): void;
  /** A line of diagnostics, to stderr. */
  err(line: string): void;
}

const encoder = new TextEncoder();

export const stdio: Output = {
  out: (line) => Deno.stdout.writeSync(encoder.encode(`${line}\n`)),
  err: (line) => Deno.stderr.writeSync(encoder.encode(`${line}\n`)),
};
