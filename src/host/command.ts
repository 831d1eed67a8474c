/**
 * Running host programs (qemu-img, mkfs.vfat, debugfs, cp …): always an
 * argument vector, never a shell, and a failure that says which program
 * failed and what it printed.
 */

export interface RunOptions {
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: Uint8Array;
  readonly stderr: string;
}

/** A program exited non-zero, or could not be started. */
export class CommandError extends Error {
  readonly program: string;
  readonly code: number | undefined;
  readonly stderr: string;

  constructor(
    program: string,
    args: readonly string[],
    code: number | undefined,
    stderr: string,
  ) {
    const detail = stderr.trim().split("\n").slice(-3).join("; ");
    super(
      code === undefined
        ? `Cannot run ${program}: ${detail}`
        : `${program} ${args.join(" ")} failed with exit code ${code}${
          detail ? `: ${detail}` : ""
        }`,
    );
    this.name = "CommandError";
    this.program = program;
    this.code = code;
    this.stderr = stderr;
  }
}

/** Runs `program` to its end; never throws for a non-zero exit. */
export async function run(
  program: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(program, {
      args: [...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.env === undefined ? {} : { env: { ...options.env } }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    }).output();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new CommandError(
        program,
        args,
        undefined,
        "not installed (run scripts/setup.sh)",
      );
    }
    throw error;
  }
  return {
    code: output.code,
    stdout: output.stdout,
    stderr: new TextDecoder().decode(output.stderr),
  };
}

/**
 * Runs `program` and returns its stdout as text.
 *
 * @throws {CommandError} on a non-zero exit, with its stderr
 */
export async function runChecked(
  program: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<string> {
  const result = await run(program, args, options);
  if (result.code !== 0) {
    throw new CommandError(program, args, result.code, result.stderr);
  }
  return new TextDecoder().decode(result.stdout);
}

/**
 * Like runChecked(), for programs that run children of their own (apt,
 * dpkg): the program starts in a new process group (setsid), and an abort
 * sends SIGTERM to the whole group. Signalling only the program is not
 * enough: mmdebstrap, for one, waits for its current child before it acts
 * on a signal, which took half a minute.
 *
 * @throws {CommandError} on a non-zero exit
 * @throws the signal's reason when aborted
 */
export async function runGroupChecked(
  program: string,
  args: readonly string[],
  options: { readonly signal?: AbortSignal | undefined } = {},
): Promise<void> {
  options.signal?.throwIfAborted();
  const child = new Deno.Command("setsid", {
    args: [program, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stop = () => {
    try {
      Deno.kill(-child.pid, "SIGTERM");
    } catch {
      // The group is gone already.
    }
  };
  options.signal?.addEventListener("abort", stop, { once: true });
  try {
    const output = await child.output();
    options.signal?.throwIfAborted();
    if (!output.success) {
      throw new CommandError(
        program,
        args,
        output.code,
        new TextDecoder().decode(output.stderr),
      );
    }
  } finally {
    options.signal?.removeEventListener("abort", stop);
  }
}
