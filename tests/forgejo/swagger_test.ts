import assert from "node:assert/strict";
import { loadSwagger } from "./swagger.ts";

const swagger = await loadSwagger();

Deno.test("loadSwagger() reads Forgejo 15.0.3's description once, under /api/v1", async () => {
  assert.equal(await loadSwagger(), swagger);
  assert.equal(swagger.basePath, "/api/v1");
});

Deno.test("Swagger.matchOperation() prefers literal segments and decodes parameters", () => {
  const jobs = swagger.matchOperation("GET", "/repos/o/r/actions/runners/jobs");
  assert.equal(jobs?.operationId, "repoSearchRunJobs");
  const runner = swagger.matchOperation(
    "DELETE",
    "/repos/my%20org/r/actions/runners/7",
  );
  assert.equal(runner?.operationId, "deleteRepoRunner");
  assert.deepEqual(runner?.pathParams, {
    owner: "my org",
    repo: "r",
    runner_id: "7",
  });
  assert.equal(
    swagger.matchOperation("GET", "/orgs/team/actions/runners/jobs")
      ?.operationId,
    "orgSearchRunJobs",
  );
  assert.equal(swagger.matchOperation("PUT", "/version"), undefined);
  assert.equal(swagger.matchOperation("GET", "/no/such/thing"), undefined);
});

Deno.test("Swagger.checkParameters() checks declared types and refuses unknown query parameters", () => {
  const list = swagger.matchOperation("GET", "/repos/o/r/actions/runners")!;
  const check = (query: string) =>
    swagger.checkParameters(list, new URLSearchParams(query));
  assert.deepEqual(check("visible=false&page=1&limit=50"), []);
  assert.deepEqual(check("sudo=alice"), []);
  assert.deepEqual(check("limit=many"), ["limit must be integer"]);
  assert.deepEqual(check("visible=maybe"), ["visible must be boolean"]);
  assert.deepEqual(check("per_page=5"), [
    "query parameter per_page is not in the description",
  ]);
  const byId = swagger.matchOperation("GET", "/repositories/x1")!;
  assert.deepEqual(swagger.checkParameters(byId, new URLSearchParams()), [
    "id must be integer",
  ]);
});

Deno.test("Swagger.checkBody() checks the in: body schema; unknown properties are a mismatch", () => {
  const register = swagger.matchOperation(
    "POST",
    "/repos/o/r/actions/runners",
  )!;
  assert.ok(swagger.takesBody(register));
  assert.deepEqual(
    swagger.checkBody(register, '{"name":"fr-1","ephemeral":true}'),
    [],
  );
  // Forgejo would drop it silently: the runner declares its labels itself.
  assert.deepEqual(
    swagger.checkBody(register, '{"name":"fr-1","labels":["x"]}'),
    ["body must NOT have additional properties (labels)"],
  );
  assert.deepEqual(swagger.checkBody(register, '{"ephemeral":"yes"}'), [
    "body must have required property 'name'",
    "body/ephemeral must be boolean",
  ]);
  assert.deepEqual(swagger.checkBody(register, "{"), [
    "request body is not JSON",
  ]);
  const token = swagger.matchOperation("POST", "/users/u/tokens")!;
  assert.deepEqual(
    swagger.checkBody(token, '{"name":"t","scopes":["write:package"]}'),
    [],
  );
  const version = swagger.matchOperation("GET", "/version")!;
  assert.deepEqual(swagger.checkBody(version, "{}"), [
    "the operation takes no body",
  ]);
});

Deno.test("Swagger.checkResponse() takes Go's nil slices as null and knows empty statuses", () => {
  const jobs = swagger.matchOperation(
    "GET",
    "/repos/o/r/actions/runners/jobs",
  )!;
  // The empty queue is the JSON literal null (research note §1.2).
  assert.deepEqual(swagger.checkResponse(jobs, 200, null), []);
  const job = {
    id: 1,
    attempt: 1,
    handle: "h",
    repo_id: 1,
    owner_id: 1,
    name: "build",
    needs: null,
    runs_on: ["debian"],
    task_id: 0,
    status: "waiting",
  };
  assert.deepEqual(swagger.checkResponse(jobs, 200, [job]), []);
  assert.deepEqual(
    swagger.checkResponse(jobs, 200, [{ ...job, created: "now" }]),
    ["body/0 must NOT have additional properties (created)"],
  );
  assert.deepEqual(swagger.checkResponse(jobs, 201, []), [
    "status 201 is not documented",
  ]);
  // Errors Forgejo does not document are not checked.
  assert.deepEqual(swagger.checkResponse(jobs, 401, { message: "x" }), []);
  const remove = swagger.matchOperation(
    "DELETE",
    "/repos/o/r/actions/runners/1",
  )!;
  assert.deepEqual(swagger.checkResponse(remove, 204, undefined), []);
  assert.deepEqual(swagger.checkResponse(remove, 204, {}), [
    "status 204 has no body",
  ]);
  assert.deepEqual(
    swagger.checkResponse(remove, 404, {
      message: "The target couldn't be found.",
      url: "u",
      errors: null,
    }),
    [],
  );
  const runner = swagger.matchOperation("GET", "/repos/o/r/actions/runners/1")!;
  assert.deepEqual(
    swagger.checkResponse(runner, 200, { id: 1, status: "busy" }),
    ["body/status must be equal to one of the allowed values"],
  );
});
