import assert from "node:assert/strict";
import { loadOpenApi } from "./openapi.ts";
import { createdMatches } from "./rest.ts";

const api = await loadOpenApi();

Deno.test("a literal path segment wins over a parameter", () => {
  const jit = api.match(
    "POST",
    "/repos/octo/forrest/actions/runners/generate-jitconfig",
  );
  assert.equal(jit?.operationId, "actions/generate-runner-jitconfig-for-repo");
  const runner = api.match("DELETE", "/repos/octo/my%20repo/actions/runners/7");
  assert.deepEqual(runner?.pathParams, {
    owner: "octo",
    repo: "my repo",
    runner_id: "7",
  });
  assert.equal(api.match("GET", "/nothing/here"), undefined);
});

Deno.test("responses are checked against the schema of their status", () => {
  const list = api.match("GET", "/repos/o/r/actions/runners")!;
  const runner = {
    id: 1,
    name: "a",
    os: "Linux",
    status: "online",
    busy: false,
  };
  assert.deepEqual(
    api.checkResponse(list, 200, {
      total_count: 1,
      runners: [{ ...runner, labels: [] }],
    }),
    [],
  );
  const problems = api.checkResponse(list, 200, {
    total_count: 1,
    runners: [{ ...runner, busy: "no" }],
  });
  assert.deepEqual(problems.map((p) => p.split(" (")[0]), [
    "body/runners/0 must have required property 'labels'",
    "body/runners/0/busy must be boolean",
  ]);
  assert.deepEqual(api.checkResponse(list, 201, {}), [
    "status 201 is not documented",
  ]);
  assert.deepEqual(api.checkResponse(list, 503, "whatever"), []);
  const remove = api.match("DELETE", "/repos/o/r/actions/runners/1")!;
  assert.deepEqual(api.checkResponse(remove, 204, undefined), []);
  assert.deepEqual(api.checkResponse(remove, 204, {}), [
    "status 204 has no body",
  ]);
});

Deno.test("OpenAPI 3.0 nullable fields accept null, even with an enum", () => {
  const jobs = api.match("GET", "/repos/o/r/actions/runs/1/jobs")!;
  const job = { ...api.example("job"), created_at: "2024-01-01T00:00:00Z" };
  const check = (patch: Record<string, unknown>) =>
    api.checkResponse(jobs, 200, {
      total_count: 1,
      jobs: [{ ...job, ...patch }],
    });
  assert.deepEqual(check({ conclusion: null, runner_id: null }), []);
  assert.equal(check({ conclusion: "meh" }).length, 1);
});

Deno.test("the created qualifier filters like GitHub's search syntax", () => {
  const at = "2024-05-01T12:00:00Z";
  assert.equal(createdMatches(at, ">=2024-05-01T12:00:00Z"), true);
  assert.equal(createdMatches(at, ">2024-05-01T12:00:00Z"), false);
  assert.equal(createdMatches(at, "<2024-06-01"), true);
  assert.equal(createdMatches(at, "2024-04-01..2024-04-30"), false);
  assert.equal(createdMatches(at, "2024-04-01..*"), true);
  assert.equal(createdMatches(at, "2024-05-01"), true);
});
