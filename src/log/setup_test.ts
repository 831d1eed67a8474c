import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import { Secret } from "./secret.ts";
import {
  type LogFormat,
  parseLogLevel,
  resetLogging,
  setupLogging,
} from "./setup.ts";

// Shapes of real secrets (made up here): an installation token, a JWT, a PEM
// key, a JIT config (base64 of a JSON document, as GitHub sends it).
const INSTALLATION_TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a";
const JWT =
  "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjEyMzQ1NiwiaWF0IjoxNzAwMDAwMDAwfQ.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLWp3dA";
const PEM =
  "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAwsecret\n-----END RSA PRIVATE KEY-----";
const JIT_CONFIG = btoa(JSON.stringify({
  ".runner": "x".repeat(80),
  ".credentials": "y".repeat(80),
}));
const SECRETS = [
  INSTALLATION_TOKEN,
  JWT,
  "MIIEowIBAAKCAQEAwsecret",
  JIT_CONFIG,
];

async function capture(
  format: LogFormat,
  body: () => void,
  level: "debug" | "info" = "debug",
): Promise<string> {
  const lines: string[] = [];
  await setupLogging({
    level,
    format,
    color: false,
    write: (l) => lines.push(l),
  });
  try {
    body();
  } finally {
    await resetLogging();
  }
  return lines.join("");
}

function logSecrets(): void {
  const log = getLogger(["forrest", "test"]);
  // Secrets in properties under tell-tale names…
  log.info("Registered runner {name}", {
    name: "forrest-build-abc",
    jitconfig: JIT_CONFIG,
    token: INSTALLATION_TOKEN,
    privateKey: PEM,
  });
  // …and in the message text, where only their shape gives them away.
  log.debug(`GET /app returned for Bearer ${JWT}`);
  log.debug(`Token ${INSTALLATION_TOKEN} expires soon`);
  log.debug(`Key file holds ${PEM}`);
  log.debug(`Runner config ${JIT_CONFIG}`);
  log.info("Persistence token is {value}", { value: new Secret("tok-123456") });
}

for (const format of ["text", "json"] as const) {
  Deno.test(`setupLogging() redacts secrets in ${format} lines`, async () => {
    const output = await capture(format, logSecrets);
    for (const secret of [...SECRETS, "tok-123456"]) {
      assert.ok(!output.includes(secret), `${secret.slice(0, 12)}… leaked`);
    }
    assert.match(output, /forrest-build-abc/);
    // The four secrets in message text, and the Secret, print as [redacted];
    // JSON lines also keep the redacted properties' names.
    const redactions = output.split("[redacted]").length - 1;
    assert.equal(redactions, format === "json" ? 5 + 3 + 1 : 5, output);
  });
}

Deno.test("setupLogging() writes one JSON object per line", async () => {
  const output = await capture("json", () => {
    getLogger(["forrest", "config"]).warn(
      "Kept the old config: {count} problems",
      {
        count: 3,
      },
    );
  });
  const lines = output.trimEnd().split("\n");
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0]!);
  assert.equal(record.level, "WARN");
  assert.equal(record.logger, "forrest.config");
  assert.equal(record.message, "Kept the old config: 3 problems");
  assert.equal(record.properties.count, 3);
});

Deno.test("setupLogging() drops records below the level", async () => {
  const output = await capture("text", () => {
    const log = getLogger(["forrest"]);
    log.debug("hidden detail");
    log.info("shown line");
  }, "info");
  assert.doesNotMatch(output, /hidden detail/);
  assert.match(output, /shown line/);
});

Deno.test("parseLogLevel() accepts logtape's names and warn", () => {
  assert.equal(parseLogLevel("debug"), "debug");
  assert.equal(parseLogLevel("WARN"), "warning");
  assert.throws(
    () => parseLogLevel("loud"),
    new RangeError(
      'Unknown log level "loud" (use trace, debug, info, warning, error, fatal)',
    ),
  );
});

Deno.test("Secret prints as [redacted] everywhere but reveal()", () => {
  const secret = new Secret("s3cret-value");
  assert.equal(`${secret}`, "[redacted]");
  assert.equal(JSON.stringify({ secret }), '{"secret":"[redacted]"}');
  assert.equal(Deno.inspect({ secret }), "{ secret: [redacted] }");
  assert.equal(secret.reveal(), "s3cret-value");
});
