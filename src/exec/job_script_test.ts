import assert from "node:assert/strict";
import { execJobScript, shellQuote } from "./job_script.ts";

Deno.test("shellQuote() makes any argument one literal word for sh", async () => {
  const args = [
    "plain",
    "it's",
    'a "b"',
    "$HOME",
    "*",
    "",
    "a\nb",
    "\\",
    "`id`",
    "-c",
  ];
  const script = `printf '%s\\0' ${args.map(shellQuote).join(" ")}`;
  const out = await new Deno.Command("sh", {
    args: ["-c", script],
    stdout: "piped",
  }).output();
  assert.deepEqual(
    new TextDecoder().decode(out.stdout).split("\0").slice(0, -1),
    args,
  );
});

Deno.test("execJobScript() runs the command in the home folder with exec", () => {
  assert.equal(
    execJobScript(["sh", "-c", "echo hello; exit 3"]),
    "#!/bin/sh\n# Written by forrest exec: runs the command it was given, as given.\n" +
      "export FORREST_API_URL=http://10.0.2.100:8080\n" +
      "export FORREST_RUN_TOKEN_FILE=/home/runner/config/run-token\n" +
      'cd "$HOME" 2>/dev/null || cd /\n' +
      "exec 'sh' '-c' 'echo hello; exit 3'\n",
  );
  assert.throws(() => execJobScript([]), RangeError);
});
