/**
 * Runs Forrest's CLI the way a user does: as a separate process, with its
 * own environment and working directory. Every CLI test goes through here,
 * so switching the tests to the compiled binary is a change to COMMAND only.
 */

import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** How the CLI is started: deno running main.ts with the compiled binary's permissions. */
const COMMAND = [
  Deno.execPath(),
  "run",
  "--quiet",
  "--allow-all",
  "--no-prompt",
  // The heap limits of the compiled binary (deno.json, task "compile").
  "--v8-flags=--max-semi-space-size=4,--max-old-space-size=96",
  "--config",
  `${ROOT}deno.json`,
  `${ROOT}main.ts`,
];

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunForrestOptions {
  /** Variables beyond the minimal environment (PATH, HOME, DENO_DIR). */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** A command that runs Forrest, such as `ip netns exec NS`. */
  readonly prefix?: readonly string[];
}

function forrestCommand(
  args: readonly string[],
  options: RunForrestOptions,
  stdin: "null" | "piped",
): Deno.Command {
  const [program, ...prefix] = [...(options.prefix ?? []), ...COMMAND];
  const inherited: Record<string, string> = {};
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) inherited[name] = value;
  }
  return new Deno.Command(program!, {
    args: [...prefix, ...args],
    cwd: options.cwd ?? ROOT,
    // A clean environment: FORREST_* from the developer's shell must not
    // change what the tests see.
    clearEnv: true,
    env: { ...inherited, NO_COLOR: "1", ...options.env },
    stdin,
    stdout: "piped",
    stderr: "piped",
  });
}

/**
 * Starts `forrest ...args` with a pipe for stdin, for commands a user
 * talks to (`forrest shell`). The caller owns the process.
 */
export function startForrest(
  args: readonly string[],
  options: RunForrestOptions = {},
): Deno.ChildProcess {
  return forrestCommand(args, options, "piped").spawn();
}

/** Runs `forrest ...args` to the end and returns what it printed. */
export async function runForrest(
  args: readonly string[],
  options: RunForrestOptions = {},
): Promise<CliResult> {
  const output = await forrestCommand(args, options, "null").output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

export interface ExecArgsOptions {
  readonly image: string;
  readonly baseDir: string;
  /** user, restricted or unsafe-host. */
  readonly network: string;
  /** tcg unless said otherwise: KVM does not boot guests on these machines. */
  readonly accel?: string;
}

/** Arguments of `forrest exec` on an image, before the command's own. */
export function execArgs(
  options: ExecArgsOptions,
  args: readonly string[],
): string[] {
  return [
    "exec",
    "--image",
    options.image,
    "--base-dir",
    options.baseDir,
    "--accel",
    options.accel ?? "tcg",
    "--network",
    options.network,
    ...args,
  ];
}

/** The repository root, for files such as forrest.toml.example. */
export const REPO_ROOT: string = ROOT;

export { withTempDir } from "./temp.ts";

/** The text of a child's output stream, read as far as a test needs. */
export class StreamText {
  text = "";
  readonly #reader: ReadableStreamDefaultReader<string>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }

  /**
   * Reads until `marker` has appeared (at `from` or later); throws if the
   * stream ends first.
   */
  async until(marker: string, from = 0): Promise<void> {
    while (this.text.indexOf(marker, from) < 0) {
      const { value, done } = await this.#reader.read();
      if (done) {
        throw new Error(`output ended before "${marker}": ${this.text}`);
      }
      this.text += value;
    }
  }

  /** Reads to the end of the stream and returns all of it. */
  async rest(): Promise<string> {
    for (;;) {
      const { value, done } = await this.#reader.read();
      if (done) return this.text;
      this.text += value;
    }
  }

  /** Stops reading (the rest is not needed). */
  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}
