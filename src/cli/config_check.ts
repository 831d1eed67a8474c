/** `forrest config check`: validate a config, show what it resolves to. */

import {
  allMachines,
  type Config,
  ConfigError,
  formatDuration,
  formatListen,
  formatSize,
  loadConfig,
  type MachineConfig,
  type ScopeKind,
  tripletName,
} from "../config/mod.ts";
import { pathExists } from "../host/mod.ts";
import { machineImagePath } from "../images/mod.ts";
import { EXIT_OK, EXIT_USAGE } from "./exit.ts";
import type { Output } from "./output.ts";
import { formatTable } from "./table.ts";

export interface ConfigCheckOptions {
  /** The file was not named by the user: say how to name one if it is missing. */
  readonly isDefault: boolean;
}

export async function configCheck(
  file: string,
  output: Output,
  options: ConfigCheckOptions,
): Promise<number> {
  let config: Config;
  try {
    config = await loadConfig(file);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.lines) output.err(line);
    const count = error.problems.length;
    output.err(`${file}: ${count} problem${count === 1 ? "" : "s"}`);
    if (options.isDefault && error.problems[0]?.line === undefined) {
      output.err("Name a config file with --config FILE or $FORREST_CONFIG");
    }
    return EXIT_USAGE;
  }
  for (const line of describeConfig(file, config)) output.out(line);
  for (const machine of allMachines(config)) {
    for (const nic of machine.networkInterfaces) {
      if (!(await pathExists(nic.path))) {
        output.err(
          `warning: ${tripletName(machine.triplet)}: VDE switch ${nic.path} ` +
            "does not exist (yet): its runs fail to start until it does",
        );
      }
    }
    if (machine.network === "unsafe-host") {
      output.err(
        `warning: ${
          tripletName(machine.triplet)
        } has network = "unsafe-host": ` +
          "its jobs can reach every service on the host's loopback (10.0.2.2)",
      );
    }
    if (machine.baseImage === undefined && machine.baseMachine === undefined) {
      output.err(
        `warning: ${
          tripletName(machine.triplet)
        } has no base_image or base_machine: ` +
          `it starts only from its own image, ${
            machineImagePath(config.host.baseDir, machine.triplet)
          }, and waits while there is none`,
      );
    }
  }
  return EXIT_OK;
}

/** The summary `config check` prints for a valid config. */
export function describeConfig(file: string, config: Config): string[] {
  const { host, github } = config;
  const machines = allMachines(config);
  const budget = [
    `${formatSize(host.ram)} RAM`,
    host.cpus === undefined ? "no CPU limit" : `${host.cpus} CPUs`,
  ].join(", ");
  const lines = [
    `${file}: OK, ${plural(machines.length, "machine")} in ${
      describeScopes(config)
    }`,
    "",
    `  base_dir  ${host.baseDir}`,
    `  budget    ${budget}`,
    `  accel     ${host.accel}`,
    `  listen    ${config.server.listen.map(formatListen).join(", ")}`,
    `  github    ${
      github
        ? `${
          [
            github.app ? `App ${github.app.appId}` : undefined,
            github.tokenFile ? `token from ${github.tokenFile}` : undefined,
          ].filter(Boolean).join(", ")
        } at ${github.apiUrl}, ${
          github.discovery === "scale-set"
            ? "jobs through runner scale sets (no webhooks)"
            : `polling every ${formatDuration(github.pollingInterval)}`
        }`
        : config.forgejo.length > 0
        ? "not configured"
        : "not configured (forrest serve needs it)"
    }`,
    ...config.forgejo.map((f) =>
      `  forgejo   ${f.name}: ${f.url}${
        f.guestUrl === f.url ? "" : ` (guests: ${f.guestUrl})`
      }, token from ${f.tokenFile}, polling every ${
        formatDuration(f.pollingInterval)
      }`
    ),
  ];
  if (machines.length > 0) {
    // Runner groups only where some machine has one: most setups have none.
    const groups = machines.some((m) => m.runnerGroup !== undefined);
    const scaleSets = machines.some((m) => m.scaleSet !== undefined);
    const warm = machines.some((m) => m.minIdle > 0);
    lines.push(
      "",
      ...formatTable(
        [
          "MACHINE",
          "CPUS",
          "RAM",
          "DISK",
          "IMAGE SOURCE",
          "USE_BASE",
          ...(warm ? ["MIN_IDLE"] : []),
          ...(groups ? ["RUNNER GROUP"] : []),
          ...(scaleSets ? ["SCALE SET"] : []),
        ],
        machines.map((m) => [
          ...machineRow(m),
          ...(warm ? [String(m.minIdle)] : []),
          ...(groups ? [m.runnerGroup ?? "(default)"] : []),
          ...(scaleSets ? [m.scaleSet ?? "-"] : []),
        ]),
        {
          align: [
            "left",
            "right",
            "right",
            "right",
            "left",
            "left",
            ...(warm ? ["right" as const] : []),
            "left",
            "left",
          ],
        },
      ),
    );
  }
  return lines;
}

/** "2 repositories, 1 organization": what a config serves. */
export function describeScopes(config: Config): string {
  const counts = new Map<ScopeKind, number>();
  for (const { scope } of config.scopes) {
    counts.set(scope.kind, (counts.get(scope.kind) ?? 0) + 1);
  }
  const many = {
    repository: "repositories",
    organization: "organizations",
    enterprise: "enterprises",
  } as const;
  const parts = [...counts].map(([kind, count]) =>
    plural(count, kind, many[kind])
  );
  return parts.length ? parts.join(", ") : "0 repositories";
}

function machineRow(machine: MachineConfig): string[] {
  return [
    tripletName(machine.triplet),
    String(machine.cpus),
    formatSize(machine.ram),
    machine.disk === undefined ? "image" : formatSize(machine.disk),
    machine.baseMachine
      ? `machine ${tripletName(machine.baseMachine)}`
      : machine.baseImage
      ? `image ${machine.baseImage}`
      : "its own image only",
    machine.useBase,
  ];
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
