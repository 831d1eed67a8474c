/**
 * The command tree. Commands are registered here only once they work; each
 * action returns its exit code through `setExit`.
 *
 * --config, --log-level and --log-format work before the command and after
 * it. Options are positional (a command's own options come after its name),
 * so that `exec` can hand everything after its first operand to the guest
 * untouched: `forrest exec sh -c 'echo hi'` must not read `-c` as --config.
 */

import { NETWORK_MODES } from "../vm/mod.ts";
import { Argument, Command, InvalidArgumentError, Option } from "commander";
import type { Accel } from "../config/mod.ts";
import {
  LOG_FORMATS,
  type LogFormat,
  parseLogLevel,
  setupLogging,
} from "../log/mod.ts";
import { versionLine } from "../version.ts";
import { configCheck } from "./config_check.ts";
import { configImport, type ConfigImportFlags } from "./config_import.ts";
import { execCommand, type ExecFlags, EXIT_EXEC_FAILED } from "./exec.ts";
import { UsageError } from "./exit.ts";
import type { Output } from "./output.ts";
import { shellCommand, type ShellFlags } from "./shell.ts";
import { DEFAULT_CONFIG } from "./host_settings.ts";
import {
  IMAGE_BUILD_DEFAULTS,
  imageBuildCommand,
  type ImageBuildFlags,
} from "./image_build.ts";
import { imageListCommand, type ImageListFlags } from "./image_list.ts";
import { serveCommand, type ServeFlags } from "./serve.ts";
import { statusCommand, type StatusFlags } from "./status.ts";
import { tpmInitCommand, type TpmInitFlags } from "./tpm_init.ts";
import { DEBIAN_RELEASES, GUEST_FEATURES } from "../images/mod.ts";

export interface ProgramContext {
  readonly output: Output;
  /** Environment lookup, so tests and the launcher see the same rules. */
  readonly env: (name: string) => string | undefined;
  /** Records the exit code of the command that ran. */
  readonly setExit: (code: number) => void;
  /** Raw output streams, for commands that pass bytes through. */
  readonly writeStdout: (chunk: Uint8Array) => Promise<void>;
  readonly writeStderr: (chunk: Uint8Array) => Promise<void>;
}

interface CommonOptions {
  config?: string;
  logLevel?: string;
  logFormat?: LogFormat;
}

/** Adds the options every command takes, before or after its name. */
function withCommonOptions(command: Command): Command {
  return command
    .option(
      "-c, --config <file>",
      `config file (default: $FORREST_CONFIG, else ./${DEFAULT_CONFIG})`,
    )
    .option(
      "--log-level <level>",
      "trace, debug, info, warning or error (default: $FORREST_LOG, else info)",
    )
    .addOption(
      new Option(
        "--log-format <format>",
        "log lines as text or JSON (default: text)",
      ).choices(
        LOG_FORMATS,
      ),
    );
}

export function createProgram(context: ProgramContext): Command {
  const { output, env, setExit } = context;
  const program = withCommonOptions(new Command("forrest"))
    .description(
      "Run GitHub Actions jobs in ephemeral qemu VMs, one VM per job, on one host.",
    )
    .version(versionLine(), "-V, --version", "print the version")
    .helpOption("-h, --help", "show help")
    .helpCommand(false)
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out(text.trimEnd()),
      writeErr: (text) => output.err(text.trimEnd()),
      outputError: (text, write) =>
        write(text.replace(/^error: /, "forrest: ")),
    })
    .hook("preAction", async (_command, action) => {
      const options = action.optsWithGlobals<CommonOptions>();
      let level;
      try {
        level = parseLogLevel(options.logLevel ?? env("FORREST_LOG") ?? "info");
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
      await setupLogging({ level, format: options.logFormat ?? "text" });
    });

  withCommonOptions(program.command("version"))
    .description("print the version")
    .action(() => {
      output.out(versionLine());
      setExit(0);
    });

  const config = program.command("config")
    .description("work with the config file")
    .helpCommand(false);
  withCommonOptions(config.command("check"))
    .description(
      "validate the config and print the machines it defines; exit 2 listing every problem",
    )
    .argument("[file]", "config file (same as --config)")
    .addHelpText(
      "after",
      "\nProblems are printed as FILE:LINE: key.path: message, all at once.",
    )
    .action(async (file: string | undefined, _options, command: Command) => {
      const { config: flag } = command.optsWithGlobals<CommonOptions>();
      if (file !== undefined && flag !== undefined && file !== flag) {
        throw new UsageError(
          `Two config files given ("${file}" and --config "${flag}"): name one`,
        );
      }
      const chosen = file ?? flag ?? env("FORREST_CONFIG");
      setExit(
        await configCheck(chosen ?? DEFAULT_CONFIG, output, {
          isDefault: chosen === undefined,
        }),
      );
    });

  withCommonOptions(config.command("import"))
    .description(
      "turn the original forrest's YAML config into TOML with the same machines",
    )
    .argument("<file>", "the original's config.yaml")
    .option(
      "-o, --output <file>",
      "write the TOML to this file (atomically, mode 0600) instead of stdout",
    )
    .option("--force", "with -o: replace the file if it exists")
    .addHelpText(
      "after",
      `
Notes on stderr (FILE:LINE: note: key: message) say where Forrest means
something else; the same notes stand as # NOTE: comments in the TOML. The
result is checked as \`config check\` would; exit 2 if it has problems.
Merge lists are reversed into extends: in YAML the earlier mapping wins,
in extends the later snippet. docs/moving.md has the details.

Example:
  forrest config import /etc/forrest/config.yaml -o /etc/forrest/forrest.toml`,
    )
    .action(async (file: string, _options, command: Command) => {
      setExit(
        await configImport(file, command.opts<ConfigImportFlags>(), output),
      );
    });

  withCommonOptions(program.command("exec"))
    .description("run a command in a throw-away VM; exit with its exit code")
    .argument("<command...>", "the command and its arguments")
    .option(
      "--image <path>",
      "the image to boot (default: base_dir/images/debian-bookworm.img, built when missing)",
    )
    .option(
      "--machine <owner/repo/machine>",
      "boot a configured machine: its image chain, size and network",
    )
    .option(
      "--persist",
      "with --machine: if the command exits 0, its disk becomes the machine's image",
    )
    .option("--cpus <n>", "vCPUs (default: the machine's, else 2)")
    .option("--ram <size>", "memory (default: the machine's, else 2G)")
    .option(
      "--disk <size>",
      "grow the VM's disk to this size (default: the image's size)",
    )
    .option(
      "--timeout <duration>",
      `stop the VM after this long and exit 124 (e.g. "30m")`,
    )
    .option("--keep", "keep the run directory (disk, logs) for inspection")
    .option("-v, --verbose", "show the boot log on stderr")
    .addOption(
      new Option(
        "--accel <accel>",
        "kvm, tcg, or auto (default: host.accel, else auto)",
      )
        .choices(["auto", "kvm", "tcg"]),
    )
    .addOption(
      new Option(
        "--network <mode>",
        "user: the outside world, not the host; restricted: only forwards; unsafe-host: also the host's loopback at 10.0.2.2 (default: the machine's, else user)",
      )
        .choices(NETWORK_MODES),
    )
    .addOption(
      new Option(
        "--forward <port:127.0.0.1:port>",
        "the guest's 10.0.2.100:PORT reaches this port of the host's loopback (repeatable)",
      )
        .argParser((value: string, previous: string[] | undefined) => [
          ...(previous ?? []),
          value,
        ]),
    )
    .option(
      "--base-dir <dir>",
      "where runs live (default: host.base_dir, else $XDG_DATA_HOME/forrest)",
    )
    .passThroughOptions()
    .addHelpText(
      "after",
      `
The command runs as user "runner" in the VM's home folder; its output
(stdout and stderr) is shown as it comes. Exit codes: the command's own;
124 on --timeout; 125 when Forrest could not run it; 130 on Ctrl-C,
143 on SIGTERM (the VM is stopped first in both cases).

Examples:
  forrest exec -- uname -a
  forrest exec --image test.img --timeout 5m sh -c 'make && make test'`,
    )
    .action(async (command: string[], _options, cmd: Command) => {
      const flags = cmd.optsWithGlobals<ExecFlags & { accel?: Accel }>();
      try {
        setExit(
          await execCommand(command, flags, {
            output,
            env,
            write: context.writeStdout,
            writeLog: context.writeStderr,
          }),
        );
      } catch (error) {
        if (error instanceof UsageError) throw error;
        output.err(`forrest: ${(error as Error).message}`);
        setExit(EXIT_EXEC_FAILED);
      }
    });

  const image = program.command("image").description("build and list images")
    .helpCommand(false);
  withCommonOptions(image.command("build"))
    .description(
      "build a bootable image, smoke-boot it, publish it in base_dir/images/",
    )
    .addArgument(
      new Argument(
        "<kind>",
        "debian: Debian with mmdebstrap (or its cloud image); oci: a container image",
      ).choices(["debian", "oci"]),
    )
    .addArgument(
      new Argument(
        "[source]",
        "oci only: docker://REF, oci:DIR[:TAG], oci-archive:FILE or docker-archive:FILE",
      ),
    )
    .addOption(
      new Option("--release <release>", "Debian release").choices(
        DEBIAN_RELEASES,
      ).default(IMAGE_BUILD_DEFAULTS.release),
    )
    .addOption(
      new Option(
        "--method <method>",
        "debootstrap: a fast image Forrest boots directly; cloud: Debian's cloud image",
      )
        .choices(["debootstrap", "cloud"]).default(IMAGE_BUILD_DEFAULTS.method),
    )
    .option(
      "--out <path>",
      "where to publish (default: base_dir/images/debian-RELEASE.img, or oci-NAME.img)",
    )
    .option(
      "--size <size>",
      "size of the image's file system",
      IMAGE_BUILD_DEFAULTS.size,
    )
    .option("--mirror <url>", "Debian mirror (default: the host's apt sources)")
    .option(
      "--package <name>",
      "another package to install (repeatable)",
      (value: string, all: string[]) => [...all, value],
      [] as string[],
    )
    .addOption(
      new Option(
        "--with <feature>",
        `${
          GUEST_FEATURES.join(", ")
        }: docker gives jobs dockerd, runner in group docker (repeatable)`,
      ).argParser((value: string, all: string[] | undefined) => {
        // A parser of one's own replaces commander's choices check.
        if (!(GUEST_FEATURES as readonly string[]).includes(value)) {
          throw new InvalidArgumentError(
            `Allowed choices are ${GUEST_FEATURES.join(", ")}.`,
          );
        }
        return [...(all ?? []), value];
      }),
    )
    .option(
      "--registries-conf <file>",
      "oci: registries.conf for skopeo (mirrors, plain-HTTP registries; default the system's)",
    )
    .option(
      "--runner-version <version>",
      "bake in this actions runner release (e.g. 2.320.0)",
    )
    .option(
      "--runner-sha256 <hex>",
      "the release tarball's sha256 (required with --runner-version)",
    )
    .option(
      "--runner-url <url>",
      "where runner releases are",
      IMAGE_BUILD_DEFAULTS.runnerUrl,
    )
    .option(
      "--forgejo-runner-version <version>",
      "bake in this forgejo-runner release (e.g. 12.8.2)",
    )
    .option(
      "--forgejo-runner-sha256 <hex>",
      "the release binary's sha256 (required with --forgejo-runner-version)",
    )
    .option(
      "--forgejo-runner-url <url>",
      "where forgejo-runner releases are",
      IMAGE_BUILD_DEFAULTS.forgejoRunnerUrl,
    )
    .option(
      "--cloud-url <url>",
      "where Debian's cloud images are (--method cloud)",
      IMAGE_BUILD_DEFAULTS.cloudUrl,
    )
    .addOption(
      new Option("--accel <accel>", "for the smoke boot: kvm, tcg or auto")
        .choices(["auto", "kvm", "tcg"]),
    )
    .option(
      "--base-dir <dir>",
      "default: host.base_dir, else $XDG_DATA_HOME/forrest",
    )
    .action(
      async (
        kind: "debian" | "oci",
        source: string | undefined,
        _options,
        cmd: Command,
      ) => {
        const debianOnly = ["release", "method", "mirror", "cloudUrl"].filter(
          (name) => cmd.getOptionValueSource(name) === "cli",
        );
        setExit(
          await imageBuildCommand(
            { ...cmd.optsWithGlobals<ImageBuildFlags>(), kind, source },
            { output, env, debianOnly },
          ),
        );
      },
    );

  withCommonOptions(image.command("list"))
    .description(
      "list src images and machine images: size on disk, age, what they derive from",
    )
    .option("--json", "print JSON for scripts")
    .option(
      "--base-dir <dir>",
      "default: host.base_dir, else $XDG_DATA_HOME/forrest",
    )
    .action(async (_options, cmd: Command) => {
      setExit(
        await imageListCommand(cmd.optsWithGlobals<ImageListFlags>(), {
          output,
          env,
        }),
      );
    });

  const tpm = program.command("tpm").description("machines' software TPMs");
  withCommonOptions(tpm.command("init"))
    .description(
      "make a machine type's TPM state (machines/OWNER/REPO/MACHINE.swtpm): each run gets a copy",
    )
    .argument("<machine>", "OWNER/REPO/MACHINE")
    .option("--force", "replace existing state (its keys are lost)")
    .option(
      "--base-dir <dir>",
      "default: host.base_dir, else $XDG_DATA_HOME/forrest",
    )
    .action(async (machine: string, _options, cmd: Command) => {
      setExit(
        await tpmInitCommand(machine, cmd.optsWithGlobals<TpmInitFlags>(), {
          output,
          env,
        }),
      );
    });

  withCommonOptions(program.command("shell"))
    .description("attach to a running machine's root shell (Ctrl-] detaches)")
    .argument(
      "<runner>",
      "the runner name, as in runs/<owner>/<repo>/<machine>/<runner>",
    )
    .option(
      "--base-dir <dir>",
      "where runs live (default: host.base_dir, else $XDG_DATA_HOME/forrest)",
    )
    .action(async (runner: string, _options, cmd: Command) => {
      setExit(
        await shellCommand(runner, cmd.optsWithGlobals<ShellFlags>(), {
          output,
          env,
        }),
      );
    });

  withCommonOptions(program.command("serve"))
    .description(
      "the daemon: webhooks, status and metrics API, poller, janitor, machines",
    )
    .action(async (_options, cmd: Command) => {
      setExit(await serveCommand(cmd.optsWithGlobals<ServeFlags>(), { env }));
    });

  withCommonOptions(program.command("status"))
    .description("what the running daemon is doing: machines, jobs, budgets")
    .option("--json", "print the daemon's /status JSON for scripts")
    .option(
      "--watch",
      "follow the daemon: the status again at every change (with --json: a JSON status a line)",
    )
    .action(async (_options, cmd: Command) => {
      setExit(
        await statusCommand(cmd.optsWithGlobals<StatusFlags>(), {
          output,
          env,
          isTerminal: () => Deno.stdout.isTerminal(),
        }),
      );
    });

  return program;
}
