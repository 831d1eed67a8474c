/**
 * The shape of each table of forrest.toml, as zod schemas, and the wording
 * of every shape problem. Cross-table rules (extends, base_machine, budgets)
 * live in resolve.ts; this file only knows one table at a time.
 */

import { NETWORK_MODES } from "../vm/argv.ts";
import * as z from "zod";
import { parseDuration } from "./duration.ts";
import type { KeyPath } from "./key_path.ts";
import { didYouMean } from "./suggest.ts";
import { parseSize } from "./size.ts";
import { FORREST_PLACEHOLDERS } from "./types.ts";

/** A problem before it has a line: resolve.ts and load.ts add that. */
export interface RawProblem {
  readonly path: KeyPath;
  readonly message: string;
}

interface QuantityOptions {
  /** "size" or "duration", for messages. */
  readonly kind: string;
  /** What a user would write, for messages: "4G". */
  readonly example: string;
  /** Throws an error whose message says what is wrong with the text. */
  readonly parse: (text: string) => number;
  /** The smallest value allowed, and how to say it. */
  readonly minimum: number;
  readonly minimumText: string;
}

/** A string with a unit (size or duration), parsed to a number. */
function quantitySchema(options: QuantityOptions) {
  return z.unknown().transform((value, ctx) => {
    const fail = (message: string) => {
      ctx.issues.push({ code: "custom", input: value, message });
      return z.NEVER;
    };
    if (value === undefined) return fail(MISSING);
    if (typeof value !== "string") {
      return fail(
        `expected a ${options.kind} such as "${options.example}", found ${
          describe(value)
        }`,
      );
    }
    let parsed: number;
    try {
      parsed = options.parse(value);
    } catch (error) {
      return fail(lower(error));
    }
    if (parsed < options.minimum) {
      return fail(`must be ${options.minimumText}, found "${value}"`);
    }
    return parsed;
  });
}

/** Every size in the config must be more than zero. */
const size = () =>
  quantitySchema({
    kind: "size",
    example: "4G",
    parse: parseSize,
    minimum: 1,
    minimumText: "more than 0",
  });

const duration = (minimum: number, minimumText: string) =>
  quantitySchema({
    kind: "duration",
    example: "15m",
    parse: parseDuration,
    minimum,
    minimumText: `at least ${minimumText}`,
  });

const MISSING = "required key is missing";

const nonEmpty = z.string().min(1);

/**
 * `owner/repo/machine`, `orgs/ORG/machine` or `enterprises/SLUG/machine`;
 * whether it names a configured machine is resolve.ts's.
 */
const tripletText = z.string().regex(/^[^/\s]+\/[^/\s]+\/[^/\s]+$/, {
  error: (issue) =>
    `expected "owner/repo/machine", "orgs/ORG/machine" or "enterprises/SLUG/machine", found ${
      describe(issue.input)
    }`,
});

/** A runner group's name, as GitHub shows it (it may hold spaces). */
const runnerGroup = z.string().trim().min(1).max(255);

const RESERVED_PARAMETERS: readonly string[] = FORREST_PLACEHOLDERS;

const parameterName = z.string().superRefine((name, ctx) => {
  if (!/^[A-Za-z0-9_]+$/.test(name)) {
    ctx.addIssue({
      code: "custom",
      message:
        `parameter name "${name}" may hold only letters, digits and "_" (it is written <${name}> in templates)`,
    });
  } else if (RESERVED_PARAMETERS.includes(name)) {
    ctx.addIssue({
      code: "custom",
      message: `parameter "${name}" is set by Forrest and cannot be overridden`,
    });
  }
});

const sharedDir = z.strictObject({
  path: nonEmpty,
  // Not "." or "..": the guest mounts each share at /mnt/<tag>.
  tag: z.string().regex(/^(?!\.\.?$)[A-Za-z0-9_.-]{1,31}$/, {
    error: (issue) =>
      `expected a 9p mount tag of 1 to 31 letters, digits, ".", "_" or "-", not "." or "..", found ${
        describe(issue.input)
      }`,
  }),
  writable: z.boolean().optional(),
});

/** Only VDE today, as in the original; `type` leaves room for more. */
const networkInterface = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("vde"), path: nonEmpty }),
], {
  error: (issue) =>
    issue.code === "invalid_union"
      ? `expected type = "vde" (the only kind of extra network card), found ${
        describe((issue.input as Record<string, unknown> | undefined)?.type)
      }`
      : undefined,
});

const guestForward = z.strictObject({
  port: z.int().min(1).max(65535),
  to: z.string().regex(/^[^\s:]+:\d{1,5}$/, {
    error: (issue) =>
      `expected HOST:PORT (for example "127.0.0.1:3128"), found ${
        describe(issue.input)
      }`,
  }),
});

const artifactStore = z.strictObject({
  name: z.string().regex(/^(?!\.\.?$)[A-Za-z0-9_.-]{1,64}$/, {
    error: (issue) =>
      `expected a store name of 1 to 64 letters, digits, ".", "_" or "-" (the path segment after /artifact/), found ${
        describe(issue.input)
      }`,
  }).optional(),
  path: nonEmpty,
  url: z.string().regex(/^https?:\/\/\S+$/, {
    error: (issue) =>
      `expected the store's public http:// or https:// URL, found ${
        describe(issue.input)
      }`,
  }),
  quota: size(),
  token: nonEmpty.optional(),
});

/** Every key a machine (or a snippet) may have; all optional before merging. */
export const machineSchema = z.strictObject({
  extends: z.array(nonEmpty).optional(),
  base_image: nonEmpty.optional(),
  base_machine: tripletText.optional(),
  use_base: z.enum(["if_newer", "always", "never"]).optional(),
  network: z.enum(NETWORK_MODES).optional(),
  cpus: z.int().min(1).max(1024).optional(),
  ram: size().optional(),
  disk: size().optional(),
  labels: z.array(nonEmpty).optional(),
  default_labels: z.boolean().optional(),
  runner_group: runnerGroup.optional(),
  setup_template: z.strictObject({
    path: nonEmpty.optional(),
    parameters: z.record(parameterName, z.string()).optional(),
  }).optional(),
  shared: z.array(sharedDir).optional(),
  forwards: z.array(guestForward).optional(),
  network_interfaces: z.array(networkInterface).optional(),
  artifacts: z.array(artifactStore).optional(),
  start_timeout: duration(1_000, "1s").optional(),
  min_idle: z.int().min(0).max(1000).optional(),
  scale_set: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,44}$/, {
    error: (issue) =>
      `expected a scale set name of 1 to 45 letters, digits, ".", "_" or "-", found ${
        describe(issue.input)
      }`,
  }).optional(),
});
export type RawMachine = z.output<typeof machineSchema>;

export const hostSchema = z.strictObject({
  base_dir: nonEmpty,
  ram: size(),
  cpus: z.int().min(1).max(65536).optional(),
  accel: z.enum(["auto", "kvm", "tcg"]).optional(),
  clone: z.enum(["auto", "reflink", "qcow2"]).optional(),
  shutdown_timeout: duration(0, "0s").optional(),
});
export type RawHost = z.output<typeof hostSchema>;

export const serverSchema = z.strictObject({
  listen: z.array(nonEmpty).optional(),
  socket_mode: z.string().regex(/^0?[0-7]{3}$/, {
    error: (issue) =>
      `expected an octal file mode such as "0660", found ${
        describe(issue.input)
      }`,
  }).optional(),
});
export type RawServer = z.output<typeof serverSchema>;

function httpUrl(what: string) {
  return z.string().refine((text) => /^https?:\/\/[^/\s]+\S*$/.test(text), {
    error: (issue) =>
      `expected ${what} as an http:// or https:// URL, found ${
        describe(issue.input)
      }`,
  });
}

export const githubSchema = z.strictObject({
  app_id: z.int().min(1).optional(),
  private_key_file: nonEmpty.optional(),
  token_file: nonEmpty.optional(),
  webhook_secret_file: nonEmpty.optional(),
  webhook_secret: nonEmpty.optional(),
  api_url: z.string().refine((text) => /^https?:\/\/[^/\s]+/.test(text), {
    error: (issue) =>
      `expected an http:// or https:// URL, found ${describe(issue.input)}`,
  }).optional(),
  polling_interval: duration(5_000, "5s").optional(),
  queued_polling_interval: duration(1_000, "1s").optional(),
  janitor_interval: duration(1_000, "1s").optional(),
  request_timeout: duration(1_000, "1s").optional(),
  discovery: z.enum(["webhook", "scale-set"]).optional(),
});
export type RawGitHub = z.output<typeof githubSchema>;

/** `[forgejo.NAME]`: a Forgejo instance (15 or newer). */
export const forgejoSchema = z.strictObject({
  url: httpUrl("the instance's address"),
  guest_url: httpUrl("the address guests reach the instance at").optional(),
  token_file: nonEmpty,
  polling_interval: duration(1_000, "1s").optional(),
  janitor_interval: duration(1_000, "1s").optional(),
  request_timeout: duration(1_000, "1s").optional(),
});
export type RawForgejo = z.output<typeof forgejoSchema>;

/** `forge = "NAME"`: a `[forgejo.NAME]` table, or "github" (the default). */
const forgeName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,31}$/, {
  error: (issue) =>
    `expected the name of a [forgejo.NAME] table, or "github", found ${
      describe(issue.input)
    }`,
});

export const repositorySchema = z.strictObject({
  forge: forgeName.optional(),
  package_token: z.boolean().optional(),
  persistence_token: nonEmpty.optional(),
  // Known here so that resolve.ts can say why it does not apply.
  runner_group: runnerGroup.optional(),
  machines: z.record(z.string(), z.unknown()).optional(),
});

export const organizationSchema = z.strictObject({
  forge: forgeName.optional(),
  // Known here so that resolve.ts can say why it does not apply.
  package_token: z.boolean().optional(),
  persistence_token: nonEmpty.optional(),
  runner_group: runnerGroup.optional(),
  repositories: z.array(nonEmpty).optional(),
  machines: z.record(z.string(), z.unknown()).optional(),
});

export const enterpriseSchema = z.strictObject({
  persistence_token: nonEmpty.optional(),
  runner_group: runnerGroup.optional(),
  machines: z.record(z.string(), z.unknown()).optional(),
});

export const TOP_LEVEL_KEYS = [
  "host",
  "server",
  "github",
  "forgejo",
  "snippets",
  "repositories",
  "organizations",
  "enterprises",
] as const;

/**
 * Parses one table, reporting every problem in it under `path`. Keys with
 * problems are dropped and the rest is kept, so that later checks still see
 * the good keys and a file's problems are all found in one run. Returns
 * undefined only when the value is not a table at all.
 */
export function parseTable<S extends z.ZodObject>(
  schema: S,
  raw: unknown,
  path: KeyPath,
  problems: RawProblem[],
): Partial<z.output<S>> | undefined {
  if (!isTable(raw)) {
    problems.push({
      path,
      message: `expected a table, found ${describe(raw)}`,
    });
    return undefined;
  }
  const first = schema.safeParse(raw, { error: issueMessage });
  if (first.success) return first.data;
  const bad = new Set<string>();
  for (const issue of first.error.issues) {
    for (const problem of issueProblems(issue)) {
      problems.push({
        path: [...path, ...problem.path],
        message: problem.message,
      });
      bad.add(String(problem.path[0]));
    }
  }
  const rest = Object.fromEntries(
    Object.entries(raw).filter(([key]) => !bad.has(key)),
  );
  const second = partialOf(schema).safeParse(rest);
  return second.success ? second.data as Partial<z.output<S>> : undefined;
}

/**
 * `schema.partial()`, made once per schema: each new object schema is
 * compiled by zod on first use, which made a file with many bad tables ten
 * times slower to check than a good one (bench/config_bench.ts).
 */
const partials = new WeakMap<z.ZodObject, z.ZodObject>();

function partialOf(schema: z.ZodObject): z.ZodObject {
  let partial = partials.get(schema);
  if (!partial) {
    partial = schema.partial();
    partials.set(schema, partial);
  }
  return partial;
}

/** Reports keys of `raw` not among `known`, with a suggestion where close. */
export function checkKeys(
  raw: Record<string, unknown>,
  known: readonly string[],
  path: KeyPath,
  problems: RawProblem[],
): void {
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) {
      problems.push({ path: [...path, key], message: unknownKey(key, known) });
    }
  }
}

export function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null &&
    !Array.isArray(value) && !(value instanceof Date);
}

/**
 * Keys of the original's YAML config that mean something else here, so that
 * people moving over are told what to write instead.
 */
function fromTheOriginal(
  key: string,
  known: readonly string[],
): string | undefined {
  if (key === "jwt_key_file" && known.includes("private_key_file")) {
    return 'unknown key; forrest\'s YAML "jwt_key_file" is "private_key_file" here';
  }
  if (key.endsWith("_snippets") && known.includes("snippets")) {
    return `unknown key; forrest's YAML "${key}" anchors are [snippets.NAME] ` +
      "tables here, used with extends = [...]";
  }
  return undefined;
}

function unknownKey(key: string, known: readonly string[]): string {
  const original = fromTheOriginal(key, known);
  if (original) return original;
  const hint = didYouMean(key, known);
  return hint === ""
    ? `unknown key (expected one of ${known.join(", ")})`
    : `unknown key${hint}`;
}

/**
 * zod reports unknown keys as one issue on the table; we want one problem
 * per key, each on its own line, so the known keys travel in the message
 * from issueMessage() to here.
 */
const KNOWN_KEYS = "\0known:";

function issueProblems(issue: z.core.$ZodIssue): RawProblem[] {
  if (
    issue.code === "unrecognized_keys" && issue.message.startsWith(KNOWN_KEYS)
  ) {
    const known = JSON.parse(
      issue.message.slice(KNOWN_KEYS.length),
    ) as string[];
    return issue.keys.map((key) => ({
      path: [...issue.path as KeyPath, key],
      message: unknownKey(key, known),
    }));
  }
  return [{ path: issue.path as KeyPath, message: issue.message }];
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: "a string",
  int: "an integer",
  // Every number in forrest.toml is an integer; zod names z.int() "number".
  number: "an integer",
  boolean: "true or false",
  array: "an array",
  object: "a table",
  record: "a table",
};

function issueMessage(issue: z.core.$ZodRawIssue): string {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return MISSING;
      if (issue.expected === "int" && typeof issue.input === "number") {
        return `expected an integer, found ${issue.input}`;
      }
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}, found ${
        describe(issue.input)
      }`;
    case "too_small":
      if (issue.origin === "string") return "must not be empty";
      return `must be at least ${issue.minimum}, found ${
        describe(issue.input)
      }`;
    case "too_big":
      return `must be at most ${issue.maximum}, found ${describe(issue.input)}`;
    case "invalid_value": {
      const values = issue.values.map((value) => `"${String(value)}"`);
      const hint = typeof issue.input === "string"
        ? didYouMean(issue.input, issue.values.map(String))
        : "";
      return `expected one of ${values.join(", ")}, found ${
        describe(issue.input)
      }${hint}`;
    }
    case "unrecognized_keys": {
      const shape = (issue.inst as z.ZodObject | undefined)?._zod.def.shape;
      return KNOWN_KEYS + JSON.stringify(Object.keys(shape ?? {}));
    }
    case "invalid_key":
      // A record key that failed its own schema: its issues say why.
      return issue.issues.map((inner) => inner.message).join("; ");
    default:
      return issue.message ?? "is not valid";
  }
}

/** A value as a user would recognise it from their TOML. */
export function describe(value: unknown): string {
  if (typeof value === "string") {
    const short = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(short);
  }
  if (typeof value === "number" || typeof value === "boolean") {
    return String(value);
  }
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return "an array";
  if (value instanceof Date) return "a date";
  if (value === undefined) return "nothing";
  return "a table";
}

/** "Cannot parse size …" reads better mid-line as "cannot parse size …". */
function lower(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.charAt(0).toLowerCase() + message.slice(1);
}
