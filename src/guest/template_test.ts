import assert from "node:assert/strict";
import { join } from "node:path";
import {
  BUILTIN_TEMPLATE_DEFAULTS,
  BUILTIN_TEMPLATE_DIR,
  readTemplate,
  renderSetupTemplate,
  renderTemplate,
  substitute,
  TemplateError,
  unfilledPlaceholders,
  usesRunnerIdentity,
  withHashAlias,
} from "./template.ts";
import { withTempDir } from "../../tests/temp.ts";

async function withTemplate(
  files: Record<string, string | Uint8Array>,
  body: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "forrest-template-" });
  try {
    for (const [name, content] of Object.entries(files)) {
      await Deno.mkdir(join(dir, name, ".."), { recursive: true });
      if (typeof content === "string") {
        await Deno.writeTextFile(join(dir, name), content);
      } else await Deno.writeFile(join(dir, name), content);
    }
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("substitute() replaces every occurrence of known keys only", () => {
  assert.equal(
    substitute(
      "<REPO_OWNER>/<REPO_NAME> <REPO_OWNER> <UNKNOWN> <<REPO_NAME>>",
      {
        REPO_OWNER: "acme",
        REPO_NAME: "app",
      },
    ),
    "acme/app acme <UNKNOWN> <app>",
  );
});

Deno.test("substitute() does not expand placeholders inside values", () => {
  assert.equal(
    substitute("<JITCONFIG>", { JITCONFIG: "<REPO_NAME>", REPO_NAME: "app" }),
    "<REPO_NAME>",
  );
});

Deno.test("substitute() inserts values literally, $ patterns included", () => {
  assert.equal(substitute("x=<V>", { V: "$& $1 $$ `$'" }), "x=$& $1 $$ `$'");
  assert.equal(substitute("<V>", { V: "" }), "");
  assert.equal(
    substitute("<toString> <__proto__>", {}),
    "<toString> <__proto__>",
  );
});

Deno.test("unfilledPlaceholders() lists upper-case placeholders without a value", () => {
  const files = new Map([["a", "<REPO_OWNER> <MIRROR> <lower> <MIRROR>"], [
    "b",
    "<PROXY>",
  ]]);
  assert.deepEqual(unfilledPlaceholders(files, { REPO_OWNER: "acme" }), [
    "MIRROR",
    "PROXY",
  ]);
});

Deno.test("readTemplate() reads both folders, nested files included", async () => {
  await withTemplate({
    "cloud-init/user-data": "#cloud-config\n",
    "cloud-init/meta-data": "instance-id: <RUNNER_NAME>\n",
    "job-config/job.sh": "echo <REPO_NAME>\n",
    "job-config/lib/helper.sh": "true\n",
  }, async (dir) => {
    const template = await readTemplate(dir);
    assert.deepEqual([...template.cloudInit.keys()], [
      "meta-data",
      "user-data",
    ]);
    assert.deepEqual([...template.jobConfig.keys()], [
      "job.sh",
      "lib/helper.sh",
    ]);
  });
});

Deno.test("readTemplate() allows a template without cloud-init", async () => {
  await withTemplate({ "job-config/job.sh": "true\n" }, async (dir) => {
    assert.equal((await readTemplate(dir)).cloudInit.size, 0);
  });
});

Deno.test("readTemplate() refuses a missing job-config folder", async () => {
  await withTemplate({ "cloud-init/user-data": "x" }, async (dir) => {
    await assert.rejects(
      readTemplate(dir),
      new TemplateError(`Template folder "${dir}/job-config" does not exist`),
    );
  });
});

Deno.test("readTemplate() refuses files that are not UTF-8 text", async () => {
  await withTemplate({
    "job-config/job.sh": "true\n",
    "job-config/binary": new Uint8Array([0xff, 0xfe, 0x00, 0x80]),
  }, async (dir) => {
    await assert.rejects(
      readTemplate(dir),
      new TemplateError(
        `Template file "${dir}/job-config/binary" is not UTF-8 text: placeholders are replaced in text only`,
      ),
    );
  });
});

Deno.test("readTemplate() refuses symbolic links and other non-regular files", async () => {
  await withTemplate({ "job-config/job.sh": "true\n" }, async (dir) => {
    await Deno.symlink("/etc/passwd", join(dir, "job-config/passwd"));
    await assert.rejects(
      readTemplate(dir),
      new TemplateError(
        `Template file "${dir}/job-config/passwd" is a symbolic link: templates hold regular files only`,
      ),
    );
  });
  await withTemplate({ "job-config/job.sh": "true\n" }, async (dir) => {
    const fifo = new Deno.Command("mkfifo", {
      args: [join(dir, "job-config/pipe")],
    });
    assert.equal((await fifo.output()).code, 0);
    await assert.rejects(readTemplate(dir), /pipe" is not a regular file/);
  });
});

Deno.test("the built-in template renders with no placeholder left", async () => {
  const template = await readTemplate(BUILTIN_TEMPLATE_DIR);
  assert.deepEqual([...template.cloudInit.keys()], ["meta-data", "user-data"]);
  assert.deepEqual([...template.jobConfig.keys()], ["job.sh", "run-token"]);
  const values = {
    ...BUILTIN_TEMPLATE_DEFAULTS,
    REPO_OWNER: "acme",
    REPO_NAME: "app",
    MACHINE_NAME: "build",
    RUNNER_NAME: "forrest-build-0123456789abcdef",
    JITCONFIG: "eyJhIjoxfQ==",
    RUN_TOKEN: "tokentokentoken",
  };
  const files = new Map([...template.cloudInit, ...template.jobConfig]);
  assert.deepEqual(unfilledPlaceholders(files, values), []);
  const rendered = renderTemplate(template, values);
  assert.equal(
    rendered.cloudInit.get("meta-data"),
    "instance-id: forrest-build-0123456789abcdef\nlocal-hostname: build\n",
  );
  assert.match(rendered.jobConfig.get("job.sh")!, /--jitconfig "eyJhIjoxfQ=="/);
  assert.match(rendered.cloudInit.get("user-data")!, /^#cloud-config\n/);
  assert.equal(rendered.jobConfig.get("run-token"), "tokentokentoken");
  assert.match(
    rendered.jobConfig.get("job.sh")!,
    /export FORREST_API_URL="http:\/\/10\.0\.2\.100:8080"\nexport FORREST_RUN_TOKEN_FILE="\/home\/runner\/config\/run-token"/,
  );
});

Deno.test("renderSetupTemplate() fills in the run token and takes RUNNER_HASH for RUNNER_SHA256", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "job-config"));
    await Deno.writeTextFile(
      join(dir, "job-config/job.sh"),
      "hash=<RUNNER_HASH> sha=<RUNNER_SHA256> token=<RUN_TOKEN>",
    );
    const run = {
      triplet: {
        scope: { kind: "repository" as const, owner: "acme", repo: "app" },
        machine: "build",
      },
      runner: "forrest-build-x",
      forge: { JITCONFIG: "" },
      runToken: "abc123",
    };
    for (const key of ["RUNNER_HASH", "RUNNER_SHA256"]) {
      const rendered = await renderSetupTemplate(
        { path: dir, parameters: { [key]: "f00d" } },
        run,
      );
      assert.equal(
        rendered.jobConfig.get("job.sh"),
        "hash=f00d sha=f00d token=abc123",
      );
    }
  });
  assert.deepEqual(withHashAlias({ RUNNER_HASH: "a", RUNNER_SHA256: "b" }), {
    RUNNER_HASH: "a",
    RUNNER_SHA256: "b",
  });
  assert.deepEqual(withHashAlias({ X: "1" }), { X: "1" });
});

Deno.test("renderSetupTemplate() gives Forgejo machines the built-in forgejo-runner job, its identity in files", async () => {
  const rendered = await renderSetupTemplate(
    { path: undefined, parameters: { FORGEJO_RUNNER_VERSION: "12.8.2" } },
    {
      triplet: {
        scope: {
          kind: "repository",
          owner: "alice",
          repo: "app",
          forge: "codeberg",
        },
        machine: "build",
      },
      runner: "forrest-build-x",
      forge: {
        FORGE_URL: "https://codeberg.example",
        RUNNER_UUID: "d4637a60-uuid",
        RUNNER_TOKEN: "e1f3d26e",
        JOB_HANDLE: "33ba7d51-handle",
        RUNNER_LABELS: "self-hosted,forrest,build",
      },
      runToken: "abc123",
    },
  );
  const files = rendered.jobConfig;
  const script = files.get("job.sh")!;
  assert.match(script, /^#!\/bin\/sh\n/);
  assert.match(script, /version="12\.8\.2"/);
  // Parameters not given keep the built-in defaults.
  assert.match(
    script,
    /base="https:\/\/code\.forgejo\.org\/forgejo\/runner\/releases\/download"/,
  );
  assert.match(script, /--token-url "file:\$config\/runner-token"/);
  // forgejo-runner reads the token file whole: no newline may follow it.
  assert.equal(files.get("runner-token"), "e1f3d26e");
  assert.equal(files.get("runner-uuid"), "d4637a60-uuid");
  assert.equal(files.get("job-handle"), "33ba7d51-handle");
  assert.equal(files.get("runner-labels"), "self-hosted,forrest,build");
  assert.equal(files.get("forge-url"), "https://codeberg.example");
  assert.equal(files.get("run-token"), "abc123");
  // Without package_token, the package files are empty (and unused).
  assert.equal(files.get("package-token"), "");
  assert.equal(files.get("package-user"), "");
  // Nothing from the forge is pasted into the script itself.
  for (const value of ["e1f3d26e", "d4637a60", "33ba7d51"]) {
    assert.ok(!script.includes(value), value);
  }
  // The guest set-up of cloud images is the GitHub template's.
  assert.match(rendered.cloudInit.get("user-data")!, /^#cloud-config\n/);
});

Deno.test("usesRunnerIdentity() finds the runner's placeholders only", async () => {
  assert.ok(usesRunnerIdentity(new Map([["a", "x <JITCONFIG> y"]])));
  assert.ok(usesRunnerIdentity(new Map([["a", ""], ["b", "<RUNNER_TOKEN>"]])));
  assert.ok(
    !usesRunnerIdentity(new Map([["a", "<RUNNER_NAME> <RUN_TOKEN> <X>"]])),
  );
  // The built-in template's cloud-init does not: its machines get JOBDATA
  // after boot when their image can.
  const builtin = await readTemplate(BUILTIN_TEMPLATE_DIR);
  assert.ok(!usesRunnerIdentity(builtin.cloudInit));
  assert.ok(usesRunnerIdentity(builtin.jobConfig));
});
