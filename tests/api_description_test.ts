import assert from "node:assert/strict";
import {
  type Json,
  type MatchedOperation,
  pointer,
  RouteTable,
  SchemaChecker,
} from "./api_description.ts";

const PATHS: Json = {
  "/runners/{id}": {
    parameters: [{ name: "id", in: "path" }],
    get: { operationId: "get-runner", responses: {} },
  },
  "/runners/jobs": { get: { operationId: "list-jobs", responses: {} } },
  "/files/{name}.txt": { get: { operationId: "get-file", responses: {} } },
};

Deno.test("RouteTable.match() prefers literal segments, whatever the order", () => {
  const routes = new RouteTable(PATHS);
  assert.equal(routes.match("get", "/runners/jobs")?.operationId, "list-jobs");
  assert.deepEqual(routes.match("GET", "/runners/7"), {
    operationId: "get-runner",
    method: "GET",
    template: "/runners/{id}",
    pathParams: { id: "7" },
  });
  assert.equal(routes.match("POST", "/runners/7"), undefined);
  assert.equal(routes.match("GET", "/runners/7/more"), undefined);
});

Deno.test("RouteTable.match() decodes parameters and keeps malformed escapes", () => {
  const routes = new RouteTable(PATHS);
  assert.deepEqual(routes.match("GET", "/runners/a%20b")?.pathParams, {
    id: "a b",
  });
  assert.deepEqual(routes.match("GET", "/runners/%E0")?.pathParams, {
    id: "%E0",
  });
  assert.deepEqual(routes.match("GET", "/files/a.b.txt")?.pathParams, {
    name: "a.b",
  });
  assert.equal(routes.match("GET", "/files/abtxt"), undefined);
});

Deno.test("RouteTable.operation() returns the operation object, or throws", () => {
  const routes = new RouteTable(PATHS);
  const op = routes.match("GET", "/runners/jobs")!;
  assert.equal(routes.operation(op).operationId, "list-jobs");
  const unknown: MatchedOperation = { ...op, method: "DELETE" };
  assert.throws(() => routes.operation(unknown), RangeError);
});

Deno.test("pointer() follows escaped segments and throws on a dangling ref", () => {
  const doc = { paths: { "/a/b": { "x~y": 1 } } };
  assert.equal(pointer(doc, "#/paths/~1a~1b/x~0y"), 1);
  assert.throws(() => pointer(doc, "#/paths/none"), /Dangling ref/);
});

function checker(fixed: Json[] = []): SchemaChecker {
  return new SchemaChecker({
    root: "test",
    schemas: {
      definitions: { Even: { type: "integer", format: "even" } },
    },
    fix: (schema) => {
      fixed.push(schema);
      schema.additionalProperties = false;
    },
    formats: {
      even: { type: "number", validate: (n: number) => n % 2 === 0 },
      // ajv-formats' own is kept.
      email: true,
    },
    detail: (error) => error.keyword,
  });
}

Deno.test("SchemaChecker.check() rebases refs, fixes a copy and compiles once", () => {
  const fixed: Json[] = [];
  const check = checker(fixed);
  const schema = {
    type: "object",
    properties: {
      n: { $ref: "#/definitions/Even" },
      mail: { type: "string", format: "email" },
    },
  };
  assert.deepEqual(check.check("k", schema, { n: 2, mail: "a@b.c" }, "x"), []);
  assert.deepEqual(check.check("k", schema, { n: 3, mail: "no", z: 1 }, "x"), [
    "x must NOT have additional properties (additionalProperties)",
    'x/n must match format "even" (format)',
    'x/mail must match format "email" (format)',
  ]);
  assert.equal(fixed.length, 1);
  assert.equal("additionalProperties" in schema, false);
});

Deno.test("SchemaChecker.check() reports a schema that does not compile", () => {
  const check = checker();
  const broken = { $ref: "#/definitions/Missing" };
  const problems = check.check("broken", broken, 1, "x");
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /^cannot compile the schema: /);
});

Deno.test("SchemaChecker.checkAnswer() checks status, body presence and schema", () => {
  const check = checker();
  const op = new RouteTable(PATHS).match("GET", "/runners/jobs")!;
  const schema = { type: "integer" };
  const answer = { status: 200, body: 1, documented: true, schema };
  assert.deepEqual(check.checkAnswer(op, answer), []);
  assert.deepEqual(check.checkAnswer(op, { ...answer, body: "1" }), [
    "body must be integer (type)",
  ]);
  assert.deepEqual(check.checkAnswer(op, { ...answer, body: undefined }), [
    "status 200 needs a JSON body",
  ]);
  assert.deepEqual(check.checkAnswer(op, { ...answer, schema: undefined }), [
    "status 200 has no body",
  ]);
  assert.deepEqual(check.checkAnswer(op, { ...answer, documented: false }), [
    "status 200 is not documented",
  ]);
  const error = { ...answer, status: 401, documented: false };
  assert.deepEqual(check.checkAnswer(op, error), []);
});
