/**
 * From a parsed TOML document to a Config: each table checked by its schema,
 * snippets merged into machines, defaults applied, paths made absolute, and
 * the rules that span tables checked (base machines exist and do not loop,
 * every machine has an image to start from and fits the host's budget).
 * Every problem is collected; a Config comes out only when there are none.
 */

import { GUEST_API_PORT, isForwardHost } from "../launch/guest_network.ts";
import { FORWARD_ADDRESS } from "../vm/argv.ts";
import { isAbsolute, resolve } from "node:path";
import { Secret } from "../log/secret.ts";
import { isWithin } from "../host/fs.ts";
import { checkSocketBaseDir } from "../run/socket_dir.ts";
import {
  type Expanded,
  SnippetExpander,
  type SnippetSource,
} from "./extends.ts";
import type { KeyPath } from "./key_path.ts";
import { parseListen } from "./listen.ts";
import {
  checkForgejoOwnerName,
  checkMachineName,
  checkOwnerName,
  checkRepoName,
  ciUserName,
} from "./names.ts";
import {
  checkKeys,
  describe,
  enterpriseSchema,
  forgejoSchema,
  githubSchema,
  hostSchema,
  isTable,
  machineSchema,
  organizationSchema,
  parseTable,
  type RawGitHub,
  type RawHost,
  type RawProblem,
  repositorySchema,
  serverSchema,
  TOP_LEVEL_KEYS,
} from "./schema.ts";
import { formatSize } from "./size.ts";
import { closest } from "./suggest.ts";
import {
  type Config,
  DEFAULT_API_URL,
  DEFAULT_ARTIFACT_STORE,
  DEFAULT_FORGEJO_POLLING_INTERVAL,
  DEFAULT_JANITOR_INTERVAL,
  DEFAULT_LISTEN,
  DEFAULT_POLLING_INTERVAL,
  DEFAULT_QUEUED_POLLING_INTERVAL,
  DEFAULT_REQUEST_TIMEOUT,
  DEFAULT_SHUTDOWN_TIMEOUT,
  DEFAULT_SOCKET_MODE,
  type ForgejoConfig,
  forgeOf,
  type GitHubConfig,
  type HostConfig,
  type ListenAddress,
  MACHINE_DEFAULTS,
  type MachineConfig,
  parseTriplet,
  type Scope,
  SCOPE_WORDS,
  type ScopeConfig,
  scopeKey,
  type Triplet,
  tripletName,
} from "./types.ts";

export interface ResolveOptions {
  /** Absolute folder of the config file; relative paths resolve against it. */
  readonly configDir: string;
  /** Absolute path of the config file, kept in the Config. */
  readonly file: string;
}

export interface ResolveResult {
  readonly config: Config | undefined;
  readonly problems: readonly RawProblem[];
}

interface MachineEntry {
  readonly triplet: Triplet;
  readonly path: KeyPath;
  /** The scope's runner group; the machine's own `runner_group` wins. */
  readonly runnerGroup: string | undefined;
  readonly expanded: Expanded;
}

interface ScopeEntry {
  readonly scope: Scope;
  readonly token: string | undefined;
  readonly packageToken: boolean;
  readonly repositories: readonly string[] | undefined;
  readonly machines: MachineEntry[];
}

export function resolveConfig(
  doc: Record<string, unknown>,
  options: ResolveOptions,
): ResolveResult {
  const problems: RawProblem[] = [];
  checkKeys(doc, TOP_LEVEL_KEYS, [], problems);

  const host = readHost(doc, options, problems);
  const listen = readListen(doc, host?.baseDir, problems);
  const github = readGitHub(doc, options, problems);
  const forgejo = readForgejo(doc, options, problems);
  const expander = new SnippetExpander(readSnippets(doc, problems), problems);
  expander.expandAllSnippets();
  const forges: ForgeNames = {
    valid: new Set(forgejo.map((f) => f.name)),
    written: isTable(doc.forgejo) ? Object.keys(doc.forgejo) : [],
  };
  const scopes = readScopes(doc, forges, expander, problems);
  checkEnterpriseAuth(doc, scopes, problems);

  const machines = scopes.map((scope) =>
    scope.machines.map((entry) =>
      buildMachine(entry, host, github, options, problems)
    )
  );
  checkScaleSets(scopes.flatMap((s) => s.machines), machines.flat(), problems);
  checkBaseMachines(scopes.flatMap((s) => s.machines), problems);
  checkSharesApart(
    scopes.flatMap((s) => s.machines),
    machines.flat(),
    host?.baseDir,
    problems,
  );
  if (host) {
    const problem = checkSocketBaseDir(host.baseDir);
    if (problem) {
      problems.push({ path: ["host", "base_dir"], message: problem });
    }
  }

  if (problems.length > 0 || !host || !listen) {
    return { config: undefined, problems };
  }
  // base_machine is matched ignoring case; its key is the machine's own
  // spelling, which its image's path is made of.
  const byName = new Map(
    machines.flat().map((m) => [tripletName(m.triplet).toLowerCase(), m]),
  );
  for (const list of machines) {
    list.forEach((machine, index) => {
      if (machine.baseMachine === undefined) return;
      const base = byName.get(tripletName(machine.baseMachine).toLowerCase());
      list[index] = { ...machine, baseMachine: base!.triplet };
    });
  }
  const config: Config = {
    file: options.file,
    host,
    server: { listen, socketMode: socketMode(doc) },
    github,
    forgejo,
    scopes: scopes.map((scope, index): ScopeConfig => ({
      scope: scope.scope,
      persistenceToken: scope.token === undefined
        ? undefined
        : new Secret(scope.token),
      packageToken: scope.packageToken,
      repositories: scope.repositories,
      machines: machines[index]!,
    })),
  };
  return { config: deepFreeze(config), problems };
}

function readHost(
  doc: Record<string, unknown>,
  options: ResolveOptions,
  problems: RawProblem[],
): HostConfig | undefined {
  if (doc.host === undefined) {
    problems.push({
      path: ["host"],
      message: "required table [host] is missing",
    });
    return undefined;
  }
  const raw: Partial<RawHost> | undefined = parseTable(
    hostSchema,
    doc.host,
    ["host"],
    problems,
  );
  if (raw?.base_dir === undefined || raw.ram === undefined) return undefined;
  return {
    baseDir: resolve(options.configDir, raw.base_dir),
    ram: raw.ram,
    cpus: raw.cpus,
    accel: raw.accel ?? "auto",
    clone: raw.clone ?? "auto",
    shutdownTimeout: raw.shutdown_timeout ?? DEFAULT_SHUTDOWN_TIMEOUT,
  };
}

/** server.socket_mode, checked with the rest of the table by readListen(). */
function socketMode(doc: Record<string, unknown>): number {
  const raw = serverSchema.safeParse(doc.server ?? {});
  const text = raw.success ? raw.data.socket_mode : undefined;
  return text === undefined ? DEFAULT_SOCKET_MODE : parseInt(text, 8);
}

function readListen(
  doc: Record<string, unknown>,
  baseDir: string | undefined,
  problems: RawProblem[],
): ListenAddress[] | undefined {
  const raw = doc.server === undefined
    ? {}
    : parseTable(serverSchema, doc.server, ["server"], problems);
  const texts = raw?.listen ?? [DEFAULT_LISTEN];
  const addresses: ListenAddress[] = [];
  texts.forEach((text, index) => {
    try {
      // Without a valid base_dir the address is still checked; its problem
      // is reported on host.base_dir.
      addresses.push(parseListen(text, baseDir ?? "/"));
    } catch (error) {
      problems.push({
        path: ["server", "listen", index],
        message: (error as Error).message,
      });
    }
  });
  return addresses.length === texts.length ? addresses : undefined;
}

function readGitHub(
  doc: Record<string, unknown>,
  options: ResolveOptions,
  problems: RawProblem[],
): GitHubConfig | undefined {
  if (doc.github === undefined) return undefined;
  const raw: Partial<RawGitHub> | undefined = parseTable(
    githubSchema,
    doc.github,
    ["github"],
    problems,
  );
  if (!raw) return undefined;
  if (
    raw.webhook_secret !== undefined && raw.webhook_secret_file !== undefined
  ) {
    problems.push({
      path: ["github", "webhook_secret"],
      message: "set webhook_secret or webhook_secret_file, not both",
    });
  }
  const hasSecret = raw.webhook_secret !== undefined ||
    raw.webhook_secret_file !== undefined;
  // parseTable() returned a value, so doc.github is a table; a secret key
  // that is written but invalid has had its own problem reported already.
  const written = doc.github as Record<string, unknown>;
  const scaleSets = raw.discovery === "scale-set";
  if (
    !scaleSets && !("webhook_secret" in written) &&
    !("webhook_secret_file" in written)
  ) {
    problems.push({
      path: ["github"],
      message: "set webhook_secret_file (or webhook_secret) to the App's " +
        "webhook secret",
    });
  }
  const appKeys = ["app_id", "private_key_file"] as const;
  const appWritten = appKeys.filter((key) => key in written);
  if (appWritten.length === 1) {
    const missing = appKeys.find((key) => !(key in written))!;
    problems.push({
      path: ["github", missing],
      message: "required key is missing (a GitHub App needs app_id and " +
        "private_key_file)",
    });
  } else if (appWritten.length === 0 && !("token_file" in written)) {
    problems.push({
      path: ["github"],
      message: "set app_id and private_key_file (a GitHub App), or " +
        "token_file (a personal access token)",
    });
  }
  const app = raw.app_id !== undefined && raw.private_key_file !== undefined
    ? {
      appId: raw.app_id,
      privateKeyFile: resolve(options.configDir, raw.private_key_file),
    }
    : undefined;
  const tokenFile = raw.token_file === undefined
    ? undefined
    : resolve(options.configDir, raw.token_file);
  if (
    (app === undefined && tokenFile === undefined) || !(hasSecret || scaleSets)
  ) {
    return undefined;
  }
  return {
    app,
    tokenFile,
    webhookSecret: raw.webhook_secret_file !== undefined
      ? {
        kind: "file",
        path: resolve(options.configDir, raw.webhook_secret_file),
      }
      : raw.webhook_secret !== undefined
      ? { kind: "inline", value: new Secret(raw.webhook_secret) }
      : undefined,
    discovery: raw.discovery ?? "webhook",
    apiUrl: (raw.api_url ?? DEFAULT_API_URL).replace(/\/+$/, ""),
    pollingInterval: raw.polling_interval ?? DEFAULT_POLLING_INTERVAL,
    queuedPollingInterval: raw.queued_polling_interval ??
      DEFAULT_QUEUED_POLLING_INTERVAL,
    janitorInterval: raw.janitor_interval ?? DEFAULT_JANITOR_INTERVAL,
    requestTimeout: raw.request_timeout ?? DEFAULT_REQUEST_TIMEOUT,
  };
}

/** `[forgejo.NAME]` tables, in file order. */
function readForgejo(
  doc: Record<string, unknown>,
  options: ResolveOptions,
  problems: RawProblem[],
): ForgejoConfig[] {
  const instances: ForgejoConfig[] = [];
  for (
    const [name, value] of tableEntries(doc.forgejo, ["forgejo"], problems)
  ) {
    const path = ["forgejo", name];
    if (!FORGE_NAME_RE.test(name) || name === GITHUB_FORGE) {
      problems.push({
        path,
        message: name === GITHUB_FORGE
          ? `"${GITHUB_FORGE}" names GitHub in forge = "..."; call this ` +
            "Forgejo instance something else"
          : `"${name}" is not a valid forge name (1 to 32 lower-case ` +
            'letters, digits, "_" or "-", starting with a letter or digit)',
      });
      continue;
    }
    const raw = parseTable(forgejoSchema, value, path, problems);
    if (raw?.url === undefined || raw.token_file === undefined) continue;
    const url = raw.url.replace(/\/+$/, "");
    instances.push({
      name,
      url,
      guestUrl: (raw.guest_url ?? url).replace(/\/+$/, ""),
      tokenFile: resolve(options.configDir, raw.token_file),
      pollingInterval: raw.polling_interval ??
        DEFAULT_FORGEJO_POLLING_INTERVAL,
      janitorInterval: raw.janitor_interval ?? DEFAULT_JANITOR_INTERVAL,
      requestTimeout: raw.request_timeout ?? DEFAULT_REQUEST_TIMEOUT,
    });
  }
  return instances;
}

/** What `forge = "..."` calls GitHub, which needs no table of that name. */
const GITHUB_FORGE = "github";
const FORGE_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * The forge a scope table names: undefined for GitHub. A name without a
 * `[forgejo.NAME]` table is a problem, reported at `forge`.
 */
function readForge(
  forge: string | undefined,
  forges: ForgeNames,
  path: KeyPath,
  problems: RawProblem[],
): { forge: string | undefined } | undefined {
  if (forge === undefined || forge === GITHUB_FORGE) {
    return { forge: undefined };
  }
  if (forges.valid.has(forge)) return { forge };
  // A table that is written but broken has its own problems already.
  if (forges.written.includes(forge)) return undefined;
  const near = closest(forge, forges.written);
  problems.push({
    path: [...path, "forge"],
    message: `there is no [forgejo.${forge}] table${
      near ? `; did you mean "${near}"?` : ""
    }`,
  });
  return undefined;
}

/** The `[forgejo.NAME]` tables: those that resolved, and all written. */
interface ForgeNames {
  readonly valid: ReadonlySet<string>;
  readonly written: readonly string[];
}

/**
 * GitHub Apps cannot register enterprise runners: an enterprise needs a
 * token (a classic PAT with manage_runners:enterprise).
 */
function checkEnterpriseAuth(
  doc: Record<string, unknown>,
  scopes: readonly ScopeEntry[],
  problems: RawProblem[],
): void {
  if (!isTable(doc.github) || "token_file" in doc.github) return;
  for (const entry of scopes) {
    if (entry.scope.kind !== "enterprise") continue;
    problems.push({
      path: ["enterprises", entry.scope.enterprise],
      message: "enterprise runners need a token: set [github] token_file to " +
        "a classic personal access token with the manage_runners:enterprise " +
        "scope (GitHub Apps cannot register enterprise runners)",
    });
  }
}

function readSnippets(
  doc: Record<string, unknown>,
  problems: RawProblem[],
): Map<string, SnippetSource> {
  const snippets = new Map<string, SnippetSource>();
  for (
    const [name, raw] of tableEntries(doc.snippets, ["snippets"], problems)
  ) {
    const path = ["snippets", name];
    const parsed = parseTable(machineSchema, raw, path, problems);
    if (parsed) snippets.set(name, { raw: parsed, path });
  }
  return snippets;
}

/** What a scope table of each kind is called, for messages. */
const SCOPE_TABLES = {
  repository: "repositories",
  organization: "organizations",
  enterprise: "enterprises",
} as const;

function readScopes(
  doc: Record<string, unknown>,
  forges: ForgeNames,
  expander: SnippetExpander,
  problems: RawProblem[],
): ScopeEntry[] {
  return [
    ...readRepositories(doc, forges, expander, problems),
    ...readAccounts(doc, "organization", forges, expander, problems),
    ...readAccounts(doc, "enterprise", forges, expander, problems),
  ];
}

function readRepositories(
  doc: Record<string, unknown>,
  forges: ForgeNames,
  expander: SnippetExpander,
  problems: RawProblem[],
): ScopeEntry[] {
  const repositories: ScopeEntry[] = [];
  const seen = new Map<string, string>();
  /** Forgejo CI users of package_token repositories, per instance. */
  const ciUsers = new Map<string, string>();
  const owners = tableEntries(doc.repositories, ["repositories"], problems);
  for (const [owner, ownerTable] of owners) {
    const ownerPath = ["repositories", owner];
    const reserved = reservedOwner(owner);
    if (reserved) problems.push({ path: ownerPath, message: reserved });
    for (
      const [repo, repoTable] of tableEntries(ownerTable, ownerPath, problems)
    ) {
      const path = [...ownerPath, repo];
      const raw = parseTable(repositorySchema, repoTable, path, problems);
      const on = raw && readForge(raw.forge, forges, path, problems);
      // Owner names follow the forge's rules (Forgejo allows "_" and ".").
      const ownerProblem = on?.forge === undefined
        ? checkOwnerName(owner)
        : checkForgejoOwnerName(owner);
      if (ownerProblem) {
        problems.push({ path: ownerPath, message: ownerProblem });
      }
      const repoProblem = checkRepoName(repo);
      if (repoProblem) problems.push({ path, message: repoProblem });
      // Names are case-insensitive: two spellings are one repository.
      const key = `${on?.forge ?? GITHUB_FORGE}:${owner}/${repo}`.toLowerCase();
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        problems.push({
          path,
          message: `repository "${owner}/${repo}" is already configured as ` +
            `"${earlier}" (repository names ignore case)`,
        });
        continue;
      }
      seen.set(key, `${owner}/${repo}`);
      if (!raw || !on || reserved || ownerProblem || repoProblem) continue;
      if (raw.runner_group !== undefined) {
        problems.push({
          path: [...path, "runner_group"],
          message: on.forge === undefined ? REPOSITORY_GROUP : FORGEJO_GROUP,
        });
      }
      if (raw.package_token && on.forge !== undefined) {
        // Two repositories must not push as one user.
        const user = `${on.forge}:${ciUserName(owner, repo)}`;
        const other = ciUsers.get(user);
        if (other !== undefined) {
          problems.push({
            path: [...path, "package_token"],
            message: `repositories ${other} and ${owner}/${repo} would ` +
              `share the CI user "${ciUserName(owner, repo)}"; set ` +
              "package_token on one of them only",
          });
        }
        ciUsers.set(user, `${owner}/${repo}`);
      }
      if (raw.package_token && on.forge === undefined) {
        problems.push({
          path: [...path, "package_token"],
          message: "package tokens are made by Forgejo: set forge = " +
            '"NAME" to a [forgejo.NAME] table, or leave package_token out',
        });
      }
      const scope: Scope = on.forge === undefined
        ? { kind: "repository", owner, repo }
        : { kind: "repository", owner, repo, forge: on.forge };
      repositories.push({
        scope,
        token: raw.persistence_token,
        packageToken: raw.package_token ?? false,
        repositories: undefined,
        machines: readMachines(
          scope,
          undefined,
          raw.machines,
          path,
          expander,
          problems,
        ),
      });
    }
  }
  return repositories;
}

const FORGEJO_GROUP =
  "Forgejo has no runner groups: leave runner_group out of Forgejo scopes";

const REPOSITORY_GROUP =
  "runner groups belong to organizations and enterprises; a repository's " +
  "runners are always in its default group (configure the machine under " +
  "[organizations.OWNER] to use a group)";

/**
 * GitHub reserves these account names; they are the first segment of
 * organization and enterprise machine keys (orgs/ORG/m, enterprises/E/m).
 */
function reservedOwner(owner: string): string | undefined {
  const word = owner.toLowerCase();
  return Object.values(SCOPE_WORDS).some((w) => w === word)
    ? `"${owner}" is not a GitHub account (GitHub reserves the name); ` +
      `use [${word === "orgs" ? "organizations" : "enterprises"}.NAME] ` +
      "for runners of a whole organization or enterprise"
    : undefined;
}

/** `[organizations.ORG]` or `[enterprises.SLUG]`. */
function readAccounts(
  doc: Record<string, unknown>,
  kind: "organization" | "enterprise",
  forges: ForgeNames,
  expander: SnippetExpander,
  problems: RawProblem[],
): ScopeEntry[] {
  const table = SCOPE_TABLES[kind];
  const entries: ScopeEntry[] = [];
  const seen = new Map<string, string>();
  for (const [name, value] of tableEntries(doc[table], [table], problems)) {
    const path = [table, name];
    const written = isTable(value) ? value : {};
    const forgeText = typeof written.forge === "string"
      ? written.forge
      : undefined;
    const nameProblem = forgeText === undefined || forgeText === GITHUB_FORGE
      ? checkOwnerName(name)
      : checkForgejoOwnerName(name);
    if (nameProblem) {
      problems.push({
        path,
        message: nameProblem.replace("owner name", `${kind} name`),
      });
      continue;
    }
    const key = `${forgeText ?? GITHUB_FORGE}:${name}`.toLowerCase();
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      problems.push({
        path,
        message: `${kind} "${name}" is already configured as "${earlier}" ` +
          "(account names ignore case)",
      });
      continue;
    }
    seen.set(key, name);
    const raw = kind === "organization"
      ? parseTable(organizationSchema, value, path, problems)
      : parseTable(enterpriseSchema, value, path, problems);
    if (!raw) continue;
    const on = "forge" in raw
      ? readForge(raw.forge as string | undefined, forges, path, problems)
      : { forge: undefined };
    if (!on) continue;
    if (on.forge !== undefined && raw.runner_group !== undefined) {
      problems.push({
        path: [...path, "runner_group"],
        message: FORGEJO_GROUP,
      });
    }
    if ("package_token" in raw && raw.package_token !== undefined) {
      problems.push({
        path: [...path, "package_token"],
        message: "package tokens belong to a repository's CI user: set " +
          'package_token on [repositories.OWNER.REPO] (forge = "NAME")',
      });
    }
    const scope: Scope = kind === "enterprise"
      ? { kind, enterprise: name }
      : on.forge === undefined
      ? { kind, org: name }
      : { kind, org: name, forge: on.forge };
    const listed = "repositories" in raw
      ? raw.repositories as string[] | undefined
      : undefined;
    entries.push({
      scope,
      token: raw.persistence_token,
      packageToken: false,
      repositories: listed === undefined
        ? undefined
        : readRepositoryList(listed, [...path, "repositories"], problems),
      machines: readMachines(
        scope,
        raw.runner_group,
        raw.machines,
        path,
        expander,
        problems,
      ),
    });
  }
  return entries;
}

/** An organization's `repositories = [...]`: names, each once. */
function readRepositoryList(
  names: readonly string[],
  path: KeyPath,
  problems: RawProblem[],
): string[] {
  const seen = new Set<string>();
  if (names.length === 0) {
    problems.push({
      path,
      message: "lists no repository: leave the key out to serve all of the " +
        "organization's repositories",
    });
  }
  names.forEach((name, index) => {
    const problem = name.includes("/")
      ? `"${name}": write the repository's name only, without its owner`
      : checkRepoName(name);
    if (problem) problems.push({ path: [...path, index], message: problem });
    else if (seen.has(name.toLowerCase())) {
      problems.push({
        path: [...path, index],
        message: `repository "${name}" is listed twice`,
      });
    }
    seen.add(name.toLowerCase());
  });
  return [...seen];
}

function readMachines(
  scope: Scope,
  runnerGroup: string | undefined,
  machines: Record<string, unknown> | undefined,
  scopePath: KeyPath,
  expander: SnippetExpander,
  problems: RawProblem[],
): MachineEntry[] {
  const entries: MachineEntry[] = [];
  const seen = new Map<string, string>();
  const machinesPath = [...scopePath, "machines"];
  for (const [name, table] of tableEntries(machines, machinesPath, problems)) {
    const path = [...machinesPath, name];
    const nameProblem = checkMachineName(name);
    if (nameProblem) {
      problems.push({ path, message: nameProblem });
      continue;
    }
    // Machine names are runner labels, which GitHub matches ignoring case.
    const earlier = seen.get(name.toLowerCase());
    if (earlier !== undefined) {
      problems.push({
        path,
        message: `machine "${name}" is already configured as "${earlier}" ` +
          "(runner labels ignore case)",
      });
      continue;
    }
    seen.set(name.toLowerCase(), name);
    const raw = parseTable(machineSchema, table, path, problems);
    if (!raw) continue;
    const expanded = expander.expand(raw, path);
    const forge = scope.kind === "enterprise" ? undefined : scope.forge;
    if (
      (scope.kind === "repository" || forge !== undefined) &&
      expanded.value.runner_group !== undefined
    ) {
      problems.push({
        path: expanded.origin.get("runner_group") ?? path,
        message: forge === undefined ? REPOSITORY_GROUP : FORGEJO_GROUP,
      });
    }
    entries.push({
      triplet: { scope, machine: name },
      path,
      runnerGroup,
      expanded,
    });
  }
  return entries;
}

function buildMachine(
  entry: MachineEntry,
  host: HostConfig | undefined,
  github: GitHubConfig | undefined,
  options: ResolveOptions,
  problems: RawProblem[],
): MachineConfig {
  const { value, origin } = entry.expanded;
  const where = (key: string): KeyPath => origin.get(key) ?? entry.path;
  const onGitHub = forgeOf(entry.triplet.scope) === undefined;
  const scaleSets = onGitHub && github?.discovery === "scale-set";
  if (value.scale_set !== undefined && !scaleSets) {
    problems.push({
      path: where("scale_set"),
      message: onGitHub
        ? 'scale_set names a runner scale set: set [github] discovery = "scale-set" to use them'
        : "Forgejo has no runner scale sets: leave scale_set out of Forgejo scopes",
    });
  }
  const ram = value.ram ?? MACHINE_DEFAULTS.ram;
  const cpus = value.cpus ?? MACHINE_DEFAULTS.cpus;
  if (host && ram > host.ram) {
    problems.push({
      path: origin.get("ram") ?? [...entry.path, "ram"],
      message:
        `${formatSize(ram)}${
          value.ram === undefined ? " (the default)" : ""
        } ` +
        `is more than the host's RAM budget (host.ram = ${
          formatSize(host.ram)
        })`,
    });
  }
  if (host?.cpus !== undefined && cpus > host.cpus) {
    problems.push({
      path: origin.get("cpus") ?? [...entry.path, "cpus"],
      message: `${cpus}${value.cpus === undefined ? " (the default)" : ""} ` +
        `is more than the host's CPU budget (host.cpus = ${host.cpus})`,
    });
  }
  checkSharedTags(value, where, problems);
  checkForwards(value, where, problems);
  const fromConfig = (path: string) => resolve(options.configDir, path);
  const template = value.setup_template;
  return {
    triplet: entry.triplet,
    cpus,
    ram,
    disk: value.disk,
    // Image paths resolve against base_dir, where `forrest image build`
    // writes, not against the config file's folder.
    baseImage: value.base_image === undefined
      ? undefined
      : isAbsolute(value.base_image) || !host
      ? value.base_image
      : resolve(host.baseDir, value.base_image),
    baseMachine: value.base_machine === undefined
      ? undefined
      : parseTriplet(value.base_machine),
    useBase: value.use_base ?? MACHINE_DEFAULTS.useBase,
    network: value.network ?? "user",
    labels: value.labels ?? [],
    defaultLabels: value.default_labels ?? false,
    runnerGroup: value.runner_group ?? entry.runnerGroup,
    // Parameters without a path are the built-in template's.
    setupTemplate: template === undefined ? undefined : {
      path: template.path === undefined ? undefined : fromConfig(template.path),
      parameters: template.parameters ?? {},
    },
    shared: (value.shared ?? []).map((dir) => ({
      path: fromConfig(dir.path),
      tag: dir.tag,
      writable: dir.writable ?? false,
    })),
    forwards: (value.forwards ?? []).map((forward) => {
      const colon = forward.to.lastIndexOf(":");
      return {
        guestPort: forward.port,
        hostAddress: forward.to.slice(0, colon),
        hostPort: Number(forward.to.slice(colon + 1)),
      };
    }),
    networkInterfaces: (value.network_interfaces ?? []).map((nic) => ({
      type: nic.type,
      path: fromConfig(nic.path),
    })),
    artifacts: (value.artifacts ?? []).map((store) => ({
      name: store.name ?? DEFAULT_ARTIFACT_STORE,
      path: fromConfig(store.path),
      url: store.url,
      quota: store.quota,
      token: store.token === undefined ? undefined : new Secret(store.token),
    })),
    startTimeout: value.start_timeout ?? MACHINE_DEFAULTS.startTimeout,
    minIdle: value.min_idle ?? 0,
    scaleSet: scaleSets ? value.scale_set ?? entry.triplet.machine : undefined,
  };
}

/**
 * A scale set is one name in one runner group of a scope: two machine
 * types of this host may not share one (each would take the other's
 * jobs). Hosts share names on purpose, each in its own group.
 */
function checkScaleSets(
  entries: readonly MachineEntry[],
  machines: readonly MachineConfig[],
  problems: RawProblem[],
): void {
  const seen = new Map<string, string>();
  machines.forEach((machine, index) => {
    if (machine.scaleSet === undefined) return;
    const key = [
      scopeKey(machine.triplet.scope),
      (machine.runnerGroup ?? "default").toLowerCase(),
      machine.scaleSet.toLowerCase(),
    ].join("\0");
    const earlier = seen.get(key);
    const entry = entries[index]!;
    if (earlier !== undefined) {
      problems.push({
        path: entry.expanded.origin.get("scale_set") ?? entry.path,
        message: `scale set "${machine.scaleSet}" is machine ${earlier}'s ` +
          "already, in the same runner group: give each machine type its own",
      });
    } else seen.set(key, tripletName(machine.triplet));
  });
}

function checkSharedTags(
  value: Expanded["value"],
  where: (key: string) => KeyPath,
  problems: RawProblem[],
): void {
  const tags = new Set<string>();
  (value.shared ?? []).forEach((dir, index) => {
    if (tags.has(dir.tag)) {
      problems.push({
        path: [...where("shared"), index, "tag"],
        message: `tag "${dir.tag}" is used twice in this machine`,
      });
    }
    tags.add(dir.tag);
  });
}

/**
 * What shared folders must not reach, across all machines: Forrest's own
 * base_dir (machine images, TPM keys, run directories with JIT configs),
 * and, for a writable share, any machine's artifact store, where a guest
 * could swap a folder for a link while Forrest writes an upload.
 * Paths are compared as written (resolved, not followed through links).
 */
function checkSharesApart(
  entries: readonly MachineEntry[],
  machines: readonly MachineConfig[],
  baseDir: string | undefined,
  problems: RawProblem[],
): void {
  const overlap = (a: string, b: string) => isWithin(a, b) || isWithin(b, a);
  const at = (entry: MachineEntry, key: string): KeyPath =>
    entry.expanded.origin.get(key) ?? [...entry.path, key];
  const writable = machines.flatMap((m) =>
    m.shared.filter((dir) => dir.writable).map((dir) => ({ dir, machine: m }))
  );
  machines.forEach((machine, i) => {
    const entry = entries[i]!;
    machine.shared.forEach((dir, index) => {
      if (baseDir !== undefined && overlap(dir.path, baseDir)) {
        problems.push({
          path: [...at(entry, "shared"), index, "path"],
          message:
            `${dir.path} overlaps Forrest's base_dir ${baseDir}: jobs would see machine images and TPM keys; share a folder outside it`,
        });
      }
    });
    machine.artifacts.forEach((store, index) => {
      // The folder above the first per-run part is what all runs share.
      const fixed = store.path.includes("<RUNNER_NAME>")
        ? store.path.slice(0, store.path.indexOf("<RUNNER_NAME>"))
          .replace(/\/[^/]*$/, "")
        : store.path;
      const found = writable.find(({ dir }) => overlap(fixed, dir.path));
      if (found) {
        problems.push({
          path: [...at(entry, "artifacts"), index, "path"],
          message:
            `the artifact store ${store.path} overlaps ${found.dir.path}, a writable shared folder of ${
              tripletName(found.machine.triplet)
            }: a job could redirect uploads through links there; keep them apart`,
        });
      }
    });
  });
}

/**
 * Forwards of an isolated guest reach the host's 127.0.0.1 (the network
 * helper connects nowhere else); each guest port once.
 */
function checkForwards(
  value: Expanded["value"],
  where: (key: string) => KeyPath,
  problems: RawProblem[],
): void {
  const ports = new Set<number>();
  (value.forwards ?? []).forEach((forward, index) => {
    if (ports.has(forward.port)) {
      problems.push({
        path: [...where("forwards"), index, "port"],
        message:
          `guest port ${forward.port} is forwarded twice in this machine`,
      });
    }
    ports.add(forward.port);
    if (forward.port === GUEST_API_PORT) {
      problems.push({
        path: [...where("forwards"), index, "port"],
        message: `guest port ${GUEST_API_PORT} at ${FORWARD_ADDRESS} is ` +
          "Forrest's guest API (FORREST_API_URL): pick another port",
      });
    }
    const host = forward.to.slice(0, forward.to.lastIndexOf(":"));
    if (value.network !== "unsafe-host" && !isForwardHost(host)) {
      problems.push({
        path: [...where("forwards"), index, "to"],
        message:
          `a forward reaches the host's loopback: use "127.0.0.1:PORT" ` +
          `(found "${forward.to}"; to reach another machine, run a proxy on ` +
          `the host's 127.0.0.1 and forward to it)`,
      });
    }
  });
}

/**
 * A base machine must be configured, must not be the machine itself, and
 * base machines must not form a loop (each would wait for the other).
 */
function checkBaseMachines(
  machines: readonly MachineEntry[],
  problems: RawProblem[],
): void {
  const byName = new Map(
    machines.map((m) => [tripletName(m.triplet).toLowerCase(), m]),
  );
  const names = machines.map((m) => tripletName(m.triplet));
  const baseOf = (m: MachineEntry) => {
    const text = m.expanded.value.base_machine;
    return text === undefined ? undefined : byName.get(text.toLowerCase());
  };
  for (const machine of machines) {
    const text = machine.expanded.value.base_machine;
    if (text === undefined) continue;
    const path = machine.expanded.origin.get("base_machine") ?? machine.path;
    const base = baseOf(machine);
    if (!base) {
      const near = closest(text, names);
      problems.push({
        path,
        message: `names no configured machine "${text}"${
          near === undefined ? "" : `; did you mean "${near}"?`
        }`,
      });
    } else if (base === machine) {
      problems.push({ path, message: "a machine cannot be its own base" });
    }
  }
  // Longer loops: a machine is in one when its chain of bases leads back
  // to it; each loop is reported once, at its member that comes first.
  machines.forEach((start, index) => {
    const loop = [start];
    let current = baseOf(start);
    while (current && current !== start && !loop.includes(current)) {
      loop.push(current);
      current = baseOf(current);
    }
    if (current !== start || loop.length < 2) return;
    if (loop.some((m) => machines.indexOf(m) < index)) return;
    problems.push({
      path: start.expanded.origin.get("base_machine") ?? start.path,
      message: `base machines form a loop: ${
        [...loop, start].map((m) => tripletName(m.triplet)).join(" → ")
      }`,
    });
  });
}

/** Entries of a table of tables; reports a value that is not a table. */
function tableEntries(
  value: unknown,
  path: KeyPath,
  problems: RawProblem[],
): [string, unknown][] {
  if (value === undefined) return [];
  if (!isTable(value)) {
    problems.push({
      path,
      message: `expected a table, found ${describe(value)}`,
    });
    return [];
  }
  return Object.entries(value);
}

function deepFreeze<T>(value: T): T {
  if (
    typeof value === "object" && value !== null && !(value instanceof Secret)
  ) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
