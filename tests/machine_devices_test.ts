/**
 * A configured machine's devices in a real guest: `forrest exec --machine`
 * boots the Debian image of `forrest image build` with
 * - two shared folders, mounted at /mnt/<tag>: the read-only one refuses a
 *   write, the writable one takes it back to the host;
 * - a TPM from `forrest tpm init`: the guest reads the endorsement key
 *   that init made (the same bytes as a swtpm on the host reads), removes
 *   it, and the next run has it again;
 * - a second NIC on a VDE switch whose other end is a host in a network
 *   namespace of the test's own (203.0.113.1): the guest reaches it, from a
 *   locally administered MAC address.
 * Afterwards: no qemu or swtpm left, no TPM copy left in the run directory.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { runForrest } from "./cli.ts";
import { testDebianImage } from "./debian_image.ts";
import { unavailable } from "./netns.ts";
import { filesUnder, processesUnder } from "./processes.ts";
import { withTempDir } from "./temp.ts";
import {
  evict,
  guestTpmCall,
  hostTpmCall,
  readPublic,
  responseCode,
} from "./tpm.ts";
import { LAB_GUEST_V4, LAB_HOST_V4, VdeLab } from "./vde.ts";

const EK = 0x81010001;
const MACHINE = "acme/app/hil";
/** qemu's own address for the first card (the user network). */
const UPLINK_MAC = "52:54:00:12:34:56";

const JOB = `
echo "read: $(cat /mnt/ro/hello.txt)"
echo back >/mnt/rw/back.txt && echo "write: done"
# As root, so that only the share's read-only-ness can refuse it.
if out=$(sudo sh -c 'echo x >/mnt/ro/nope' 2>&1); then r=done; else r="refused ($out)"; fi
echo "write read-only: $r"
echo "ek: $(${guestTpmCall(readPublic(EK))})"
echo "evict: $(${guestTpmCall(evict(EK))})"
echo "ek after evict: $(${guestTpmCall(readPublic(EK))})"
for dev in /sys/class/net/en*; do
  [ "$(cat "$dev/address")" = ${UPLINK_MAC} ] || nic=\${dev##*/}
done
echo "nic: $(cat /sys/class/net/$nic/address)"
sudo ip addr add ${LAB_GUEST_V4}/24 dev "$nic"
sudo ip link set "$nic" up
i=0
until sudo busybox ping -c 1 -W 1 ${LAB_HOST_V4} >/dev/null 2>&1 || [ $i -ge 20 ]; do i=$((i + 1)); done
sudo busybox ping -c 1 -W 2 ${LAB_HOST_V4} >/dev/null && echo "lab: reached"
`;

/** `key: value` lines of the job's output. */
function lines(stdout: string): Map<string, string> {
  return new Map(
    stdout.split("\n").filter((line) => line.includes(": ")).map((line) => {
      const at = line.indexOf(": ");
      return [line.slice(0, at), line.slice(at + 2)];
    }),
  );
}

const skip = await unavailable();

/** A config in `dir` with machine acme/app/hil; `extra` adds its keys. */
async function writeConfig(dir: string, extra = ""): Promise<string> {
  const config = join(dir, "forrest.toml");
  await Deno.writeTextFile(
    config,
    `[host]
base_dir = "${join(dir, "base")}"
ram = "4G"
accel = "tcg"

[repositories.acme.app.machines.hil]
base_image = "${await testDebianImage()}"
ram = "1G"
network = "restricted"
${extra}`,
  );
  return config;
}

/** `forrest exec --machine acme/app/hil [FLAGS] -- sh -c SCRIPT`. */
function execOnMachine(
  config: string,
  script: string,
  flags: readonly string[] = [],
) {
  return runForrest([
    "exec",
    "-c",
    config,
    "--machine",
    MACHINE,
    ...flags,
    "--",
    "sh",
    "-c",
    script,
  ]);
}

Deno.test({
  name:
    "a machine's guest mounts its shares, uses its TPM without keeping changes, and reaches a VDE switch",
  ignore: skip !== undefined,
  fn: () =>
    withTempDir(async (dir) => {
      const base = join(dir, "base");
      const ro = join(dir, "ro");
      const rw = join(dir, "rw");
      await Deno.mkdir(ro);
      await Deno.mkdir(rw);
      await Deno.chmod(rw, 0o777); // the guest's runner (uid 1001) writes here
      await Deno.writeTextFile(join(ro, "hello.txt"), "from the host\n");
      const lab = await VdeLab.start(dir);
      try {
        const config = await writeConfig(
          dir,
          `shared = [
  { path = "${ro}", tag = "ro" },
  { path = "${rw}", tag = "rw", writable = true },
]
network_interfaces = [{ type = "vde", path = "${lab.socket}" }]
`,
        );
        const init = await runForrest(["tpm", "init", MACHINE, "-c", config]);
        assert.equal(init.code, 0, init.stderr);
        const state = join(base, "machines/acme/app/hil.swtpm");
        const ek = await hostTpmCall(state, readPublic(EK));
        assert.equal(responseCode(ek), "00000000");

        const first = await execOnMachine(config, JOB);
        assert.equal(first.code, 0, first.stderr);
        const said = lines(first.stdout);
        assert.equal(said.get("read"), "from the host", first.stdout);
        assert.equal(said.get("write"), "done");
        assert.equal(await Deno.readTextFile(join(rw, "back.txt")), "back\n");
        assert.match(
          said.get("write read-only") ?? "",
          /^refused \(.*Read-only file system\)$/,
        );
        assert.deepEqual(await filesUnder(ro), ["hello.txt"]);

        assert.equal(said.get("ek"), ek, "the guest reads init's key");
        assert.equal(responseCode(said.get("evict") ?? ""), "00000000");
        // TPM_RC_HANDLE for the first handle: the key is gone in this run.
        assert.equal(
          responseCode(said.get("ek after evict") ?? ""),
          "0000018b",
        );

        const mac = said.get("nic") ?? "";
        assert.match(mac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
        assert.equal(parseInt(mac.slice(0, 2), 16) & 0x03, 0x02);
        assert.equal(said.get("lab"), "reached", first.stdout);
        assert.ok((await lab.neighbours()).includes(mac));

        // The next run starts from init's state again, on the host as in
        // the guest.
        assert.equal(await hostTpmCall(state, readPublic(EK)), ek);
        // Kept for inspection, the run still loses its copy of the keys.
        const second = await execOnMachine(
          config,
          `echo "ek: $(${guestTpmCall(readPublic(EK))})"`,
          ["--keep"],
        );
        assert.equal(second.code, 0, second.stderr);
        assert.equal(lines(second.stdout).get("ek"), ek);
        const kept = await filesUnder(join(base, "runs"));
        assert.ok(
          kept.some((file) =>
            file.endsWith("/disk.qcow2") || file.endsWith("/disk.img")
          ),
          `${kept}`,
        );
        assert.ok(kept.some((file) => file.endsWith("/tpm.log")), `${kept}`);
        assert.ok(
          kept.every((file) => !file.includes("tpm.swtpm")),
          `TPM state kept: ${kept}`,
        );
      } finally {
        await lab.stop();
      }
      assert.deepEqual(await processesUnder(dir), [], "qemu or swtpm left");
    }, "forrest-devices-"),
});

Deno.test({
  name: "the original's single-file TPM state works as it is",
  ignore: skip !== undefined,
  fn: () =>
    withTempDir(async (dir) => {
      const base = join(dir, "base");
      const state = join(base, "machines/acme/app/hil.swtpm");
      await Deno.mkdir(join(state, ".."), { recursive: true });
      // What the original's contrib/tpm-setup/setup.sh runs.
      const setup = await new Deno.Command("swtpm_setup", {
        args: [
          "--tpm2",
          "--ecc",
          "--createek",
          "--tpmstate",
          `file://${state}`,
          "--config",
          "/dev/null",
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.ok(setup.success, new TextDecoder().decode(setup.stderr));
      assert.ok((await Deno.stat(state)).isFile);
      const ek = await hostTpmCall(state, readPublic(EK));
      assert.equal(responseCode(ek), "00000000");
      const result = await execOnMachine(
        await writeConfig(dir),
        `echo "ek: $(${guestTpmCall(readPublic(EK))})"`,
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(lines(result.stdout).get("ek"), ek);
      assert.deepEqual(await processesUnder(dir), [], "qemu or swtpm left");
    }, "forrest-devices-"),
});
