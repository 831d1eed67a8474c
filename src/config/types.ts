/** The validated, resolved configuration that the rest of Forrest reads. */

import type { NetworkMode } from "../vm/argv.ts";
import type { Secret } from "../log/secret.ts";

export type Accel = "auto" | "kvm" | "tcg";
export type UseBase = "if_newer" | "always" | "never";
export type CloneSetting = "auto" | "reflink" | "qcow2";

import type { Scope, Triplet } from "./machine_key.ts";
export * from "./machine_key.ts";

export interface HostConfig {
  /** Absolute; images, machines, runs and sockets live below it. */
  readonly baseDir: string;
  /** RAM budget for all VMs, in bytes. */
  readonly ram: number;
  /** vCPU budget for all VMs; no limit when undefined. */
  readonly cpus: number | undefined;
  readonly accel: Accel;
  /** How runs fork their image: reflink, a qcow2 overlay, or auto (probe). */
  readonly clone: CloneSetting;
  /** How long running jobs may finish when serve stops; milliseconds. */
  readonly shutdownTimeout: number;
}

export type ListenAddress =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly hostname: string; readonly port: number };

export interface ServerConfig {
  readonly listen: readonly ListenAddress[];
  /** File mode of Unix sockets (default 0o660: the owner and its group). */
  readonly socketMode: number;
}

export type WebhookSecretSource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "inline"; readonly value: Secret };

export interface GitHubAppConfig {
  readonly appId: number;
  /** Absolute path of the App's private key (PEM). */
  readonly privateKeyFile: string;
}

export interface GitHubConfig {
  /** The GitHub App; repositories and organizations use it when set. */
  readonly app: GitHubAppConfig | undefined;
  /**
   * Absolute path of a personal access token: what enterprises use (Apps
   * cannot register enterprise runners), and every scope when there is
   * no App.
   */
  readonly tokenFile: string | undefined;
  /** Undefined only with scale-set discovery, which takes no webhooks. */
  readonly webhookSecret: WebhookSecretSource | undefined;
  /**
   * How jobs are found: "webhook" (webhooks and the poller) or
   * "scale-set" (a runner scale set per machine type, whose message queue
   * Forrest long-polls: no inbound connection, product.md §16).
   */
  readonly discovery: "webhook" | "scale-set";
  /** Without a trailing slash. */
  readonly apiUrl: string;
  /** Milliseconds. */
  readonly pollingInterval: number;
  /**
   * How often queued and running runs are listed with conditional requests
   * (the quick poll, for lost webhooks); milliseconds. Off when not shorter
   * than pollingInterval.
   */
  readonly queuedPollingInterval: number;
  /** How often runners are listed and leftovers removed; milliseconds. */
  readonly janitorInterval: number;
  /** An API request that takes longer fails (and is retried); ms. */
  readonly requestTimeout: number;
}

export interface SetupTemplate {
  /** Absolute path of the template folder; the built-in one when undefined. */
  readonly path: string | undefined;
  readonly parameters: Readonly<Record<string, string>>;
}

/** A Forgejo instance, `[forgejo.NAME]` (product.md §12). */
export interface ForgejoConfig {
  /** The table's name, which scopes name with `forge = "NAME"`. */
  readonly name: string;
  /** The instance's web address, without a trailing slash. */
  readonly url: string;
  /**
   * Where guests reach the instance, without a trailing slash: `url`
   * unless the instance is only reachable from the host (then through a
   * machine's `forwards`, at http://10.0.2.100:PORT).
   */
  readonly guestUrl: string;
  /** Absolute path of the access token (see docs/forgejo.md for its scopes). */
  readonly tokenFile: string;
  /** How often each scope's waiting jobs are listed; milliseconds. */
  readonly pollingInterval: number;
  /** How often its scopes' runners are listed (the shortest of all wins); ms. */
  readonly janitorInterval: number;
  /** An API request that takes longer fails (and is retried); ms. */
  readonly requestTimeout: number;
}

export interface SharedDir {
  /** Absolute host path, exported to the guest over 9p. */
  readonly path: string;
  readonly tag: string;
  readonly writable: boolean;
}

/**
 * Where a run's guest may upload files through the guest API
 * (`PUT /artifact/<name>/<path>`), as the original's `artifacts`.
 */
export interface ArtifactStoreConfig {
  /** The first path segment after /artifact/; "artifact" by default. */
  readonly name: string;
  /** Absolute host folder; `<RUNNER_NAME>` is replaced per run. */
  readonly path: string;
  /** Public URL of the folder; `<RUNNER_NAME>` is replaced per run. */
  readonly url: string;
  /** Bytes one run may upload to this store. */
  readonly quota: number;
  /** A second bearer token an upload must present, when set. */
  readonly token: Secret | undefined;
}

/** An extra virtio-net card on a VDE switch (the original's `network_interfaces`). */
export interface NetworkInterfaceConfig {
  readonly type: "vde";
  /** Absolute path of the switch's control socket. */
  readonly path: string;
}

export interface GuestForwardConfig {
  readonly guestPort: number;
  readonly hostAddress: string;
  readonly hostPort: number;
}

export interface MachineConfig {
  readonly triplet: Triplet;
  readonly cpus: number;
  /** Bytes. */
  readonly ram: number;
  /** Bytes the run's disk is grown to; the image's own size when undefined. */
  readonly disk: number | undefined;
  /**
   * Absolute path. With neither baseImage nor baseMachine a machine starts
   * only from its own persisted image (the original's behaviour).
   */
  readonly baseImage: string | undefined;
  readonly baseMachine: Triplet | undefined;
  readonly useBase: UseBase;
  /**
   * "user": the outside world (IPv4 and IPv6) and the forwards, nothing else
   * of the host; "restricted": only the forwards; "unsafe-host": qemu's
   * plain user network, which reaches the host's loopback.
   */
  readonly network: NetworkMode;
  /** Extra runner labels, beyond `self-hosted`, `forrest` and the name. */
  readonly labels: readonly string[];
  /**
   * Also carry GitHub's default labels (`Linux`, `X64`), and take jobs that
   * ask only for labels the runner has, without naming the machine.
   */
  readonly defaultLabels: boolean;
  /** The runner group, by name (organizations, enterprises); default group when undefined. */
  readonly runnerGroup: string | undefined;
  /** The built-in template when undefined. */
  readonly setupTemplate: SetupTemplate | undefined;
  readonly shared: readonly SharedDir[];
  /** Guest connections to 10.0.2.100:guestPort reach hostAddress:hostPort. */
  readonly forwards: readonly GuestForwardConfig[];
  /** Extra network cards, beyond the user network, in config order. */
  readonly networkInterfaces: readonly NetworkInterfaceConfig[];
  /** Guest API upload targets, in config order (the first match wins). */
  readonly artifacts: readonly ArtifactStoreConfig[];
  /** Milliseconds a machine may take to come online. */
  readonly startTimeout: number;
  /**
   * Booted machines kept waiting for a job (warm machines, product.md
   * §13), from budget that queued jobs do not need.
   */
  readonly minIdle: number;
  /**
   * The runner scale set its jobs come through (`[github] discovery =
   * "scale-set"`): `scale_set`, or the machine's name. Undefined for other
   * discovery and for Forgejo.
   */
  readonly scaleSet: string | undefined;
}

/** A repository, organization or enterprise, with its machines. */
export interface ScopeConfig {
  readonly scope: Scope;
  readonly persistenceToken: Secret | undefined;
  /**
   * Forgejo repositories only: each job gets a fresh `write:package` token
   * of the repository's CI user (`<PACKAGE_USER>`, `<PACKAGE_TOKEN>`).
   */
  readonly packageToken: boolean;
  /**
   * An organization's repositories that its machines serve (lower case);
   * all of them when undefined. Always undefined for other scopes.
   */
  readonly repositories: readonly string[] | undefined;
  readonly machines: readonly MachineConfig[];
}

export interface Config {
  /** Absolute path of the file this was read from. */
  readonly file: string;
  readonly host: HostConfig;
  readonly server: ServerConfig;
  /**
   * Only `forrest serve` needs a forge, and only for the scopes that use
   * it; `exec` and `image` work without.
   */
  readonly github: GitHubConfig | undefined;
  /** Forgejo instances, in file order. */
  readonly forgejo: readonly ForgejoConfig[];
  /**
   * Repositories, then organizations, then enterprises, each in file
   * order: the order in which a job looks for its machine.
   */
  readonly scopes: readonly ScopeConfig[];
}

/** Every machine of every scope, in the order of `scopes`. */
export function allMachines(config: Config): MachineConfig[] {
  return config.scopes.flatMap((scope) => scope.machines);
}

/** GitHub's default labels of a Linux x64 runner, as GitHub spells them. */
export const GITHUB_DEFAULT_LABELS = ["Linux", "X64"] as const;

/** Defaults for machine keys that are not set, documented in docs/config.md. */
export const MACHINE_DEFAULTS = Object.freeze({
  cpus: 2,
  ram: 4 * 1024 ** 3,
  useBase: "if_newer" as UseBase,
  startTimeout: 15 * 60_000,
});

export const DEFAULT_API_URL = "https://api.github.com";
export const DEFAULT_POLLING_INTERVAL = 15 * 60_000;
/** A lost webhook's job is found within this (docs/jobs.md). */
export const DEFAULT_QUEUED_POLLING_INTERVAL = 30_000;
export const DEFAULT_JANITOR_INTERVAL = 5 * 60_000;
export const DEFAULT_REQUEST_TIMEOUT = 30_000;
export const DEFAULT_SHUTDOWN_TIMEOUT = 10 * 60_000;
/** Forgejo 15 has no job webhooks: waiting jobs are found by polling. */
export const DEFAULT_FORGEJO_POLLING_INTERVAL = 10_000;
export const DEFAULT_SOCKET_MODE = 0o660;
export const DEFAULT_LISTEN = "unix:api.sock";

/**
 * Placeholders Forrest fills in every setup template file itself, so that
 * `setup_template.parameters` cannot set them.
 */
export const FORREST_PLACEHOLDERS = [
  "SCOPE",
  "REPO_OWNER",
  "REPO_NAME",
  "MACHINE_NAME",
  "RUNNER_NAME",
  "JITCONFIG",
  "RUN_TOKEN",
  "FORGE_URL",
  "RUNNER_UUID",
  "RUNNER_TOKEN",
  "JOB_HANDLE",
  "RUNNER_LABELS",
  "PACKAGE_USER",
  "PACKAGE_TOKEN",
] as const;

/** The name of an artifact store that names none. */
export const DEFAULT_ARTIFACT_STORE = "artifact";
