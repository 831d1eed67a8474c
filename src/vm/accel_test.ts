import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  probeAccelerator,
  probeFirmware,
  resolveAccelerator,
} from "./accel.ts";

Deno.test("probeAccelerator() finds TCG usable: the probe reaches long mode", async () => {
  assert.deepEqual(await probeAccelerator("tcg"), { usable: true });
});

Deno.test("probeAccelerator() reports a missing KVM device", async () => {
  assert.deepEqual(
    await probeAccelerator("kvm", { device: "/nonexistent/kvm" }),
    {
      usable: false,
      reason: "/nonexistent/kvm does not exist",
    },
  );
});

Deno.test("probeAccelerator() gives a definite answer for KVM on this machine", async () => {
  // KVM may work or hang here (nested virtualization); either way the probe
  // must answer within its timeout, with a reason when it is not usable.
  const result = await probeAccelerator("kvm", { timeout: 2_000 });
  if (!result.usable) assert.match(result.reason ?? "", /\S/);
});

Deno.test("resolveAccelerator() keeps explicit settings without probing", async () => {
  assert.equal(await resolveAccelerator("tcg"), "tcg");
  assert.equal(await resolveAccelerator("kvm"), "kvm");
});

Deno.test("probeFirmware() is accel_probe.S as assembled", async (t) => {
  const has = async (tool: string) =>
    (await new Deno.Command("sh", { args: ["-c", `command -v ${tool}`] })
      .output()).success;
  if (!(await has("as")) || !(await has("ld"))) {
    t.step({ name: "needs binutils (as, ld)", ignore: true, fn: () => {} });
    return;
  }
  const dir = await Deno.makeTempDir();
  try {
    const source = fileURLToPath(new URL("./accel_probe.S", import.meta.url));
    const run = async (program: string, args: string[]) =>
      assert.ok(
        (await new Deno.Command(program, { args, stderr: "null" }).output())
          .success,
      );
    await run("as", ["--64", "-o", join(dir, "probe.o"), source]);
    await run("ld", [
      "-e",
      "0xf0000",
      "-Ttext=0xf0000",
      "--oformat=binary",
      "-o",
      join(dir, "probe.bin"),
      join(dir, "probe.o"),
    ]);
    assert.deepEqual(
      probeFirmware(),
      await Deno.readFile(join(dir, "probe.bin")),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
