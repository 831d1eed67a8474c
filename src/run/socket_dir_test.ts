import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkSocketBaseDir,
  MAX_BASE_DIR,
  MAX_SOCKET_NAME,
  MAX_SOCKET_PATH,
  RUN_SOCKETS,
  runSocketDir,
} from "./socket_dir.ts";
import { RUN_FILES } from "./run_dir.ts";

const LONGEST = {
  scope: {
    kind: "repository" as const,
    owner: "o".repeat(39),
    repo: "r".repeat(100),
  },
  machine: "m".repeat(64),
};
/** 60 bytes. */
const BASE = `/srv/${"b".repeat(55)}`;

function runDir(base: string, triplet: typeof LONGEST, runner: string) {
  return join(
    base,
    "runs",
    triplet.scope.owner,
    triplet.scope.repo,
    triplet.machine,
    runner,
  );
}

Deno.test("runSocketDir() keeps sockets within Linux's limit for the longest names", () => {
  const runner = `forrest-${LONGEST.machine}-0123456789abcdef`;
  const dir = runSocketDir(runDir(BASE, LONGEST, runner));
  assert.match(dir, new RegExp(`^${BASE}/sockets/[0-9a-f]{16}$`));
  for (const name of Object.values(RUN_SOCKETS)) {
    const bytes = new TextEncoder().encode(join(dir, name)).length;
    assert.ok(bytes <= MAX_SOCKET_PATH, `${join(dir, name)}: ${bytes} bytes`);
  }
  // The longest base_dir and socket name still fit.
  const longest = runSocketDir(
    runDir(`/${"b".repeat(MAX_BASE_DIR - 1)}`, LONGEST, runner),
  );
  assert.equal(
    join(longest, "s".repeat(MAX_SOCKET_NAME)).length,
    MAX_SOCKET_PATH,
  );
});

Deno.test("runSocketDir() gives every run a folder of its own", () => {
  const dirs = new Set<string>();
  const triplets = [
    {
      scope: { kind: "repository" as const, owner: "acme", repo: "app" },
      machine: "build",
    },
    {
      scope: { kind: "repository" as const, owner: "acme", repo: "app" },
      machine: "test",
    },
    {
      scope: { kind: "repository" as const, owner: "acme", repo: "lib" },
      machine: "build",
    },
    {
      scope: { kind: "repository" as const, owner: "other", repo: "app" },
      machine: "build",
    },
    LONGEST,
  ];
  for (const triplet of triplets) {
    for (const runner of ["forrest-build-0", "forrest-build-1", "exec-1"]) {
      dirs.add(runSocketDir(runDir(BASE, triplet, runner)));
    }
  }
  assert.equal(dirs.size, triplets.length * 3);
  // The same run also under another base_dir: a folder of that base_dir.
  const other = runSocketDir(runDir("/var/lib/forrest", LONGEST, "r"));
  assert.ok(other.startsWith("/var/lib/forrest/sockets/"));
});

Deno.test("runSocketDir() finds the same folder however base_dir is spelled", () => {
  const triplet = {
    scope: { kind: "repository" as const, owner: "acme", repo: "app" },
    machine: "build",
  };
  const dir = runSocketDir(runDir("/srv/forrest", triplet, "r1"));
  assert.equal(runSocketDir(runDir("/srv/forrest/", triplet, "r1")), dir);
  assert.equal(runSocketDir(runDir("/srv/x/../forrest", triplet, "r1")), dir);
  const relative = runSocketDir(runDir("base", triplet, "r1"));
  assert.equal(relative, join(Deno.cwd(), "base", dir.slice(13)));
});

Deno.test("checkSocketBaseDir() accepts base_dirs up to MAX_BASE_DIR bytes", () => {
  assert.equal(MAX_BASE_DIR, 65);
  assert.equal(
    checkSocketBaseDir(`/${"b".repeat(MAX_BASE_DIR - 1)}`),
    undefined,
  );
  assert.equal(checkSocketBaseDir("/var/lib/forrest"), undefined);
  // Bytes, not characters.
  assert.match(
    checkSocketBaseDir(`/${"ü".repeat(33)}`)!,
    /is 67 bytes long, too long for the Unix sockets/,
  );
});

Deno.test("RUN_SOCKETS names fit MAX_SOCKET_NAME; RUN_FILES holds no socket", () => {
  for (const name of Object.values(RUN_SOCKETS)) {
    assert.ok(name.length <= MAX_SOCKET_NAME, name);
  }
  for (const name of Object.values(RUN_FILES)) {
    assert.ok(!name.endsWith(".sock"), name);
  }
});
