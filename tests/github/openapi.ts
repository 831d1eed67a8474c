/**
 * GitHub's own OpenAPI description (`@octokit/openapi`) as a checker for the
 * test double: which operation a request is, and whether its parameters,
 * body and the double's answers match the schemas. The 13 MB description is
 * parsed once per test process; validators are compiled on first use.
 */

import { Ajv, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { fileURLToPath } from "node:url";

type Json = Record<string, unknown>;

/** An operation a request matched, with its decoded path parameters. */
export interface MatchedOperation {
  readonly operationId: string;
  readonly method: string;
  /** The path as the description writes it, e.g. `/repos/{owner}/{repo}`. */
  readonly template: string;
  readonly pathParams: Readonly<Record<string, string>>;
}

interface Route {
  readonly template: string;
  readonly regex: RegExp;
  readonly names: readonly string[];
  /** Literal segments: `/runners/generate-jitconfig` beats `/runners/{id}`. */
  readonly literals: number;
  readonly operation: Json;
}

/** The schemas' `$id` inside Ajv; operations' `#/components/…` refs point there. */
const ROOT = "openapi";

/** The description and its validators. Use {@link loadOpenApi}. */
export class OpenApi {
  readonly #doc: Json;
  readonly #ajv: Ajv;
  readonly #routes = new Map<string, Route[]>();
  readonly #validators = new Map<string, ValidateFunction | string>();

  constructor(doc: Json) {
    this.#doc = doc;
    const schemas = pointer(doc, "#/components/schemas") as Json;
    const formats = new Set<string>();
    for (const schema of Object.values(schemas)) fixSchema(schema, formats);
    this.#ajv = new Ajv({
      strict: false,
      allErrors: true,
      validateSchema: false,
      unicodeRegExp: false,
    });
    addFormats.default(this.#ajv);
    for (const format of formats) {
      if (!(format in this.#ajv.formats)) this.#ajv.addFormat(format, true);
    }
    this.#ajv.addSchema({ $id: ROOT, components: { schemas } });
    for (const [template, item] of Object.entries(doc.paths as Json)) {
      const names: string[] = [];
      const source = template.split("/").map((segment) =>
        segment.replace(/\{([^}]+)\}|[^{]+/g, (part, name?: string) => {
          if (name === undefined) {
            return part.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
          }
          names.push(name);
          return "([^/]+)";
        })
      ).join("/");
      const literals = template.split("/").filter((s) => !s.includes("{"))
        .length;
      for (const [method, operation] of Object.entries(item as Json)) {
        if (!isObject(operation) || !("responses" in operation)) continue;
        const routes = this.#routes.get(method.toUpperCase()) ?? [];
        routes.push({
          template,
          regex: new RegExp(`^${source}$`),
          names,
          literals,
          operation,
        });
        this.#routes.set(method.toUpperCase(), routes);
      }
    }
    for (const routes of this.#routes.values()) {
      routes.sort((a, b) => b.literals - a.literals);
    }
  }

  /** The documented operation for a request, if there is one. */
  match(method: string, path: string): MatchedOperation | undefined {
    for (const route of this.#routes.get(method.toUpperCase()) ?? []) {
      const found = route.regex.exec(path);
      if (!found) continue;
      const pathParams: Record<string, string> = {};
      route.names.forEach((name, i) => {
        pathParams[name] = safeDecode(found[i + 1]!);
      });
      return {
        operationId: String(route.operation.operationId),
        method: method.toUpperCase(),
        template: route.template,
        pathParams,
      };
    }
    return undefined;
  }

  /**
   * Problems with a request: path and query parameters against their schemas
   * (strings coerced to the declared scalar type, as a server would), and
   * the raw body against the JSON request body schema.
   */
  checkRequest(
    op: MatchedOperation,
    query: URLSearchParams,
    rawBody: string,
  ): string[] {
    const operation = this.#operation(op);
    const problems: string[] = [];
    for (const ref of (operation.parameters ?? []) as Json[]) {
      const param = this.#deref(ref);
      const name = String(param.name);
      const raw = param.in === "path"
        ? op.pathParams[name]
        : param.in === "query"
        ? query.get(name) ?? undefined
        : undefined;
      if (param.in !== "path" && param.in !== "query") continue;
      if (raw === undefined) {
        if (param.required === true) problems.push(`parameter ${name} missing`);
        continue;
      }
      if (!isObject(param.schema)) continue;
      // GitHub documents search qualifiers (`created=>=2024-01-01`) with the
      // format of the bare value, which the qualifier never matches.
      const qualifier = String(param.description).includes("search syntax");
      const declared = qualifier ? { type: "string" } : param.schema;
      const key = `${op.operationId} parameter ${name}`;
      const type = this.#deref(declared).type;
      problems.push(...this.#check(key, declared, coerce(raw, type), name));
    }
    const body = operation.requestBody === undefined
      ? undefined
      : this.#deref(operation.requestBody as Json);
    const schema = jsonSchema(body);
    if (rawBody === "") {
      if (body?.required === true) problems.push("request body missing");
    } else if (schema !== undefined) {
      let value: unknown;
      try {
        value = JSON.parse(rawBody);
      } catch {
        return [...problems, "request body is not JSON"];
      }
      problems.push(
        ...this.#check(`${op.operationId} request body`, schema, value, "body"),
      );
    }
    return problems;
  }

  /**
   * Problems with a response. Statuses the description does not list are
   * only a problem for success: GitHub documents its errors sparsely.
   */
  checkResponse(op: MatchedOperation, status: number, body: unknown): string[] {
    const responses = this.#operation(op).responses as Json;
    const documented = responses[String(status)];
    if (documented === undefined) {
      return status < 400 ? [`status ${status} is not documented`] : [];
    }
    const schema = jsonSchema(this.#deref(documented as Json));
    if (schema === undefined) {
      return body === undefined ? [] : [`status ${status} has no body`];
    }
    if (body === undefined) return [`status ${status} needs a JSON body`];
    return this.#check(
      `${op.operationId} response ${status}`,
      schema,
      body,
      "body",
    );
  }

  /** Problems with a webhook payload, by x-webhooks key (`workflow-job-queued`). */
  checkWebhook(key: string, payload: unknown): string[] {
    const hooks = this.#doc["x-webhooks"] as Json;
    const post = isObject(hooks[key]) ? (hooks[key] as Json).post : undefined;
    if (!isObject(post)) return [`webhook ${key} is not documented`];
    const schema = jsonSchema(this.#deref(post.requestBody as Json));
    if (schema === undefined) return [];
    return this.#check(`webhook ${key}`, schema, payload, "payload");
  }

  /** A copy of `components.examples[name].value`, to build responses from. */
  example(name: string): Json {
    const example = pointer(this.#doc, `#/components/examples/${name}`);
    if (!isObject(example) || !isObject(example.value)) {
      throw new Error(`No OpenAPI example "${name}"`);
    }
    return structuredClone(example.value);
  }

  #operation(op: MatchedOperation): Json {
    const item = (this.#doc.paths as Json)[op.template] as Json;
    return item[op.method.toLowerCase()] as Json;
  }

  #deref(value: Json): Json {
    let current = value;
    while (typeof current.$ref === "string") {
      current = pointer(this.#doc, current.$ref) as Json;
    }
    return current;
  }

  #check(key: string, schema: Json, value: unknown, what: string): string[] {
    let validate = this.#validators.get(key);
    if (validate === undefined) {
      try {
        const copy = rebase(structuredClone(schema)) as Json;
        fixSchema(copy, new Set());
        validate = this.#ajv.compile(copy);
      } catch (error) {
        validate = `cannot compile the schema: ${error}`;
      }
      this.#validators.set(key, validate);
    }
    if (typeof validate === "string") return [validate];
    if (validate(value)) return [];
    return (validate.errors ?? []).map((e) =>
      `${what}${e.instancePath} ${e.message ?? "is invalid"} (${e.schemaPath})`
    );
  }
}

/**
 * GitHub's descriptions: github.com; GitHub Enterprise Cloud (github.com
 * with the enterprise endpoints); GitHub Enterprise Server 3.19.
 */
export type ApiDescription = "api.github.com" | "ghec" | "ghes-3.19";

const loading = new Map<ApiDescription, Promise<OpenApi>>();

/** A description, parsed once per process (about a second the first time). */
export function loadOpenApi(
  description: ApiDescription = "api.github.com",
): Promise<OpenApi> {
  let found = loading.get(description);
  if (!found) {
    found = (async () => {
      const url = import.meta.resolve(
        `@octokit/openapi/generated/${description}.json`,
      );
      const text = await Deno.readTextFile(fileURLToPath(url));
      return new OpenApi(JSON.parse(text));
    })();
    loading.set(description, found);
  }
  return found;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function pointer(doc: Json, ref: string): unknown {
  let current: unknown = doc;
  for (const part of ref.replace(/^#\//, "").split("/")) {
    const key = part.replaceAll("~1", "/").replaceAll("~0", "~");
    current = isObject(current) ? current[key] : undefined;
  }
  if (current === undefined) throw new Error(`Dangling OpenAPI ref ${ref}`);
  return current;
}

/** The `application/json` schema of a response or request body object. */
function jsonSchema(body: Json | undefined): Json | undefined {
  const content = body?.content;
  if (!isObject(content)) return undefined;
  const json = content["application/json"];
  return isObject(json) && isObject(json.schema) ? json.schema : undefined;
}

/** Points an operation's `#/components/…` refs at the schemas added to Ajv. */
function rebase(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rebase);
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [key, item] of Object.entries(value)) {
    out[key] = key === "$ref" && typeof item === "string"
      ? `${ROOT}${item}`
      : rebase(item);
  }
  return out;
}

const SUBSCHEMA_MAPS = ["properties", "patternProperties"];
const SUBSCHEMAS = ["items", "additionalProperties", "not"];
const SUBSCHEMA_LISTS = ["allOf", "anyOf", "oneOf"];

/**
 * OpenAPI 3.0 → what Ajv understands, in place: `nullable: true` becomes a
 * `null` type (and a `null` in an `enum`, which GitHub leaves out), or an
 * `anyOf` with `{type: "null"}` where there is no `type`, which Ajv's own
 * `nullable` refuses. Collects `format` names, so unknown ones can be added.
 */
function fixSchema(schema: unknown, formats: Set<string>): void {
  if (!isObject(schema)) return;
  for (const key of SUBSCHEMA_MAPS) {
    if (isObject(schema[key])) {
      for (const sub of Object.values(schema[key])) fixSchema(sub, formats);
    }
  }
  for (const key of SUBSCHEMAS) fixSchema(schema[key], formats);
  for (const key of SUBSCHEMA_LISTS) {
    const list = schema[key];
    if (Array.isArray(list)) {
      for (const sub of list) fixSchema(sub, formats);
    }
  }
  if (typeof schema.format === "string") formats.add(schema.format);
  if (schema.nullable !== true) return;
  delete schema.nullable;
  if (typeof schema.type === "string") {
    schema.type = [schema.type, "null"];
    if (Array.isArray(schema.enum) && !schema.enum.includes(null)) {
      schema.enum.push(null);
    }
  } else {
    const rest = { ...schema };
    for (const key of Object.keys(schema)) delete schema[key];
    schema.anyOf = [{ type: "null" }, rest];
  }
}

function coerce(raw: string, type: unknown): unknown {
  const types = Array.isArray(type) ? type : [type];
  const numeric = types.includes("integer") || types.includes("number");
  if (numeric && /^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (types.includes("boolean") && (raw === "true" || raw === "false")) {
    return raw === "true";
  }
  return raw;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
