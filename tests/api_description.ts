/**
 * What the checkers of GitHub's OpenAPI 3 description (`github/openapi.ts`)
 * and Forgejo's Swagger 2 description (`forgejo/swagger.ts`) share: which
 * documented operation a request is ({@link RouteTable}), and schema checks
 * with validators compiled once ({@link SchemaChecker}). What differs by
 * dialect (where schemas live, how `null` is written, how parameters are
 * declared) stays in those two files.
 */

import { Ajv, type ErrorObject, type Format, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";

/** A JSON object from a description. */
export type Json = Record<string, unknown>;

/** An operation a request matched, with its decoded path parameters. */
export interface MatchedOperation {
  readonly operationId: string;
  readonly method: string;
  /** The path as the description writes it, e.g. `/repos/{owner}/{repo}`. */
  readonly template: string;
  readonly pathParams: Readonly<Record<string, string>>;
}

/** Whether a value is a JSON object (not an array, not null). */
export function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What a local ref (`#/components/schemas/runner`) points at in `doc`. */
export function pointer(doc: Json, ref: string): unknown {
  let current: unknown = doc;
  for (const part of ref.replace(/^#\//, "").split("/")) {
    const key = part.replaceAll("~1", "/").replaceAll("~0", "~");
    current = isObject(current) ? current[key] : undefined;
  }
  if (current === undefined) throw new Error(`Dangling ref "${ref}"`);
  return current;
}

/** A parameter, body or response object with its `$ref`s followed. */
export function deref(doc: Json, value: Json): Json {
  let current = value;
  while (typeof current.$ref === "string") {
    current = pointer(doc, current.$ref) as Json;
  }
  return current;
}

interface Route {
  readonly template: string;
  readonly regex: RegExp;
  readonly names: readonly string[];
  /** Literal segments: `/runners/generate-jitconfig` beats `/runners/{id}`. */
  readonly literals: number;
  readonly operationId: string;
}

/** A description's `paths`, answering which operation a request is. */
export class RouteTable {
  readonly #paths: Json;
  /** By upper-case method, most literal segments first. */
  readonly #routes = new Map<string, Route[]>();

  constructor(paths: Json) {
    this.#paths = paths;
    for (const [template, item] of Object.entries(paths)) {
      const names: string[] = [];
      const regex = templateRegex(template, names);
      const literals = template.split("/").filter((s) => !s.includes("{"))
        .length;
      for (const [method, operation] of Object.entries(item as Json)) {
        // Path items also hold `parameters`, `summary` and `x-…` keys.
        if (!isObject(operation) || !("responses" in operation)) continue;
        const key = method.toUpperCase();
        const routes = this.#routes.get(key) ?? [];
        const operationId = String(operation.operationId);
        routes.push({ template, regex, names, literals, operationId });
        this.#routes.set(key, routes);
      }
    }
    for (const routes of this.#routes.values()) {
      routes.sort((a, b) => b.literals - a.literals);
    }
  }

  /** The documented operation for a request's path, if there is one. */
  match(method: string, path: string): MatchedOperation | undefined {
    for (const route of this.#routes.get(method.toUpperCase()) ?? []) {
      const found = route.regex.exec(path);
      if (!found) continue;
      const pathParams: Record<string, string> = {};
      route.names.forEach((name, i) => {
        pathParams[name] = safeDecode(found[i + 1]!);
      });
      return {
        operationId: route.operationId,
        method: method.toUpperCase(),
        template: route.template,
        pathParams,
      };
    }
    return undefined;
  }

  /** The operation object a match came from. */
  operation(op: MatchedOperation): Json {
    const item = this.#paths[op.template];
    const operation = isObject(item)
      ? item[op.method.toLowerCase()]
      : undefined;
    if (!isObject(operation)) {
      throw new RangeError(
        `No operation "${op.method} ${op.template}" in the description`,
      );
    }
    return operation;
  }
}

/** `/repos/{owner}` → `^/repos/([^/]+)$`, collecting the parameter names. */
function templateRegex(template: string, names: string[]): RegExp {
  const source = template.split("/").map((segment) =>
    segment.replace(/\{([^}]+)\}|[^{]+/g, (part, name?: string) => {
      if (name === undefined) return part.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
      names.push(name);
      return "([^/]+)";
    })
  ).join("/");
  return new RegExp(`^${source}$`);
}

/** A malformed escape (`%E0`) stays as written: the path still matches. */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** A double's answer, with what its operation documents for the status. */
export interface Answer {
  readonly status: number;
  /** The JSON body; undefined for none. */
  readonly body: unknown;
  /** Whether the operation lists the status. */
  readonly documented: boolean;
  /** The JSON schema of the documented response's body; undefined for none. */
  readonly schema: Json | undefined;
}

/** How a {@link SchemaChecker} reads a description's schemas. */
export interface SchemaCheckerOptions {
  /**
   * The `$id` under which {@link schemas} is added to Ajv; the local refs of
   * a checked schema (`#/definitions/Runner`) are rebased onto it.
   */
  readonly root: string;
  /** The part of the description the refs point into, already fixed. */
  readonly schemas: Json;
  /** Turns a copy of a checked schema into what Ajv should check, in place. */
  readonly fix: (schema: Json) => void;
  /** Formats the description uses that ajv-formats does not know. */
  readonly formats?: Readonly<Record<string, Format>>;
  /** Ajv's `unicodeRegExp` (default true): whether patterns get the `u` flag. */
  readonly unicodeRegExp?: boolean;
  /** What to add in brackets to a problem, e.g. the schema path. */
  readonly detail?: (error: ErrorObject) => string | undefined;
}

/** One Ajv instance over a description's schemas, compiling each once. */
export class SchemaChecker {
  readonly #options: SchemaCheckerOptions;
  readonly #ajv: Ajv;
  /** By caller's key; a string is why the schema did not compile. */
  readonly #validators = new Map<string, ValidateFunction | string>();

  constructor(options: SchemaCheckerOptions) {
    this.#options = options;
    this.#ajv = new Ajv({
      // The descriptions use keywords (`example`, `x-…`) Ajv does not know.
      strict: false,
      allErrors: true,
      validateSchema: false,
      unicodeRegExp: options.unicodeRegExp ?? true,
    });
    addFormats.default(this.#ajv);
    for (const [name, format] of Object.entries(options.formats ?? {})) {
      if (!(name in this.#ajv.formats)) this.#ajv.addFormat(name, format);
    }
    this.#ajv.addSchema({ $id: options.root, ...options.schemas });
  }

  /**
   * Problems with `value` against `schema`, each starting with `what`. The
   * validator is compiled the first time `key` is checked and reused after.
   */
  check(key: string, schema: Json, value: unknown, what: string): string[] {
    let validate = this.#validators.get(key);
    if (validate === undefined) {
      try {
        // rebase() copies, so fix() does not touch the description.
        const copy = rebase(schema, this.#options.root) as Json;
        this.#options.fix(copy);
        validate = this.#ajv.compile(copy);
      } catch (error) {
        validate = `cannot compile the schema: ${error}`;
      }
      this.#validators.set(key, validate);
    }
    if (typeof validate === "string") return [validate];
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) => {
      const detail = this.#options.detail?.(e);
      const extra = detail === undefined ? "" : ` (${detail})`;
      return `${what}${e.instancePath} ${e.message ?? "is invalid"}${extra}`;
    });
  }

  /**
   * Problems with an answer to `op`: an unlisted success status; a body
   * where the status has none, or none where it has one; a body off the
   * schema. Unlisted error statuses are no problem: both forges document
   * their errors sparsely.
   */
  checkAnswer(op: MatchedOperation, answer: Answer): string[] {
    const { status, body, schema } = answer;
    if (!answer.documented) {
      return status < 400 ? [`status ${status} is not documented`] : [];
    }
    if (schema === undefined) {
      return body === undefined ? [] : [`status ${status} has no body`];
    }
    if (body === undefined) return [`status ${status} needs a JSON body`];
    const key = `${op.operationId} response ${status}`;
    return this.check(key, schema, body, "body");
  }
}

/** A copy of a schema with its local `$ref`s pointing under `root`. */
function rebase(value: unknown, root: string): unknown {
  if (Array.isArray(value)) return value.map((item) => rebase(item, root));
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = key === "$ref" && typeof item === "string"
      ? `${root}${item}`
      : rebase(item, root);
  }
  return out;
}
