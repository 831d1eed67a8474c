/**
 * GitHub's own OpenAPI description (`@octokit/openapi`) as a checker for the
 * test double: which operation a request is, and whether its parameters,
 * body and the double's answers match the schemas. The 13 MB description is
 * parsed once per test process; validators are compiled on first use.
 */

import { fileURLToPath } from "node:url";
import {
  deref,
  isObject,
  type Json,
  type MatchedOperation,
  pointer,
  RouteTable,
  SchemaChecker,
} from "../api_description.ts";

export type { MatchedOperation } from "../api_description.ts";

/** The description and its validators. Use {@link loadOpenApi}. */
export class OpenApi {
  readonly #doc: Json;
  readonly #routes: RouteTable;
  readonly #checker: SchemaChecker;

  constructor(doc: Json) {
    this.#doc = doc;
    this.#routes = new RouteTable(doc.paths as Json);
    const schemas = pointer(doc, "#/components/schemas") as Json;
    const formats = new Set<string>();
    for (const schema of Object.values(schemas)) fixSchema(schema, formats);
    this.#checker = new SchemaChecker({
      // Operations' `#/components/…` refs point into this.
      root: "openapi",
      schemas: { components: { schemas } },
      fix: (schema) => fixSchema(schema, new Set()),
      // GitHub's own formats (`repo.nwo`, `timestamp`) pass any value.
      formats: Object.fromEntries([...formats].map((f) => [f, true])),
      // OpenAPI's patterns are ECMA-262 ones, read without the `u` flag.
      unicodeRegExp: false,
      detail: (error) => error.schemaPath,
    });
  }

  /** The documented operation for a request, if there is one. */
  match(method: string, path: string): MatchedOperation | undefined {
    return this.#routes.match(method, path);
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
    const operation = this.#routes.operation(op);
    const problems: string[] = [];
    for (const ref of (operation.parameters ?? []) as Json[]) {
      const param = deref(this.#doc, ref);
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
      const type = deref(this.#doc, declared).type;
      problems.push(
        ...this.#checker.check(key, declared, coerce(raw, type), name),
      );
    }
    const body = operation.requestBody === undefined
      ? undefined
      : deref(this.#doc, operation.requestBody as Json);
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
        ...this.#checker.check(
          `${op.operationId} request body`,
          schema,
          value,
          "body",
        ),
      );
    }
    return problems;
  }

  /**
   * Problems with a response. Statuses the description does not list are
   * only a problem for success: GitHub documents its errors sparsely.
   */
  checkResponse(op: MatchedOperation, status: number, body: unknown): string[] {
    const responses = this.#routes.operation(op).responses as Json;
    const response = responses[String(status)];
    const documented = response !== undefined;
    const schema = documented
      ? jsonSchema(deref(this.#doc, response as Json))
      : undefined;
    return this.#checker.checkAnswer(op, { status, body, documented, schema });
  }

  /** Problems with a webhook payload, by x-webhooks key (`workflow-job-queued`). */
  checkWebhook(key: string, payload: unknown): string[] {
    const hooks = this.#doc["x-webhooks"] as Json;
    const post = isObject(hooks[key]) ? (hooks[key] as Json).post : undefined;
    if (!isObject(post)) return [`webhook ${key} is not documented`];
    const schema = jsonSchema(deref(this.#doc, post.requestBody as Json));
    if (schema === undefined) return [];
    return this.#checker.check(`webhook ${key}`, schema, payload, "payload");
  }

  /** A copy of `components.examples[name].value`, to build responses from. */
  example(name: string): Json {
    const examples = pointer(this.#doc, "#/components/examples") as Json;
    const example = examples[name];
    if (!isObject(example) || !isObject(example.value)) {
      throw new Error(`No OpenAPI example "${name}"`);
    }
    return structuredClone(example.value);
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

/** The `application/json` schema of a response or request body object. */
function jsonSchema(body: Json | undefined): Json | undefined {
  const content = body?.content;
  if (!isObject(content)) return undefined;
  const json = content["application/json"];
  return isObject(json) && isObject(json.schema) ? json.schema : undefined;
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
