/**
 * Choosing the accelerator. `auto` does not trust /dev/kvm alone: under
 * nested virtualization KVM can exist while guests hang as soon as they
 * leave real mode (seen on the machines Forrest is developed on). So the
 * probe boots a tiny guest (accel_probe.S, 173 bytes) that does what a
 * kernel does first (protected mode, paging, 64-bit long mode) and then
 * reports through qemu's isa-debug-exit device; if it does not report in
 * time, Forrest uses TCG and says why, once.
 */

import { getLogger } from "@logtape/logtape";
import type { Accel } from "../config/mod.ts";
import type { Accelerator } from "./argv.ts";

/** accel_probe.S, assembled (as --64; ld -Ttext=0xf0000 --oformat=binary). */
const PROBE_CODE =
  "fa2e660f0116a8000f20c06683c8010f22c066ea1a000f00080066b810008ed88ec08ed0bf0010000031c0b9000c0000f3abc7050010000003200000c7050020000003300000c7050030000083000000b8001000000f22d80f20e083c8200f22e0b9800000c00f320d000100000f300f20c00d000000800f22c0ea81000f001800b031e6f4f4ebfd0000000000000000ffff0000009acf00ffff00000092cf00ffff0000009aaf001f0088000f";
/** At the reset vector (0xffff0): a far jump to the code at 0xf0000. */
const RESET_VECTOR = "ea000000f0";
/** isa-debug-exit turns the probe's byte 0x31 into exit status 0x31 * 2 + 1. */
const PROBE_EXIT_STATUS = 99;

/** The 64 KiB firmware image the probe boots as its BIOS. */
export function probeFirmware(): Uint8Array {
  const image = new Uint8Array(64 * 1024);
  image.set(fromHex(PROBE_CODE), 0);
  image.set(fromHex(RESET_VECTOR), 0xfff0);
  return image;
}

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!, (byte) => parseInt(byte, 16));
}

export interface ProbeResult {
  readonly usable: boolean;
  /** Why not, for the warning. */
  readonly reason?: string;
}

export interface ProbeOptions {
  /** Milliseconds the probe guest may take; it needs ~40 ms when it works. */
  readonly timeout?: number;
  readonly binary?: string;
  readonly device?: string;
}

/** Whether a guest really runs under `accel`. */
export async function probeAccelerator(
  accel: Accelerator,
  options: ProbeOptions = {},
): Promise<ProbeResult> {
  if (accel === "kvm") {
    const device = options.device ?? "/dev/kvm";
    try {
      (await Deno.open(device, { read: true, write: true })).close();
    } catch (error) {
      const why = error instanceof Deno.errors.NotFound
        ? "does not exist"
        : "cannot be opened";
      return { usable: false, reason: `${device} ${why}` };
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "forrest-probe-" });
  const timeout = options.timeout ?? 3_000;
  try {
    const firmware = `${dir}/probe.bin`;
    await Deno.writeFile(firmware, probeFirmware());
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeout);
    const output = await new Deno.Command(
      options.binary ?? "qemu-system-x86_64",
      {
        args: [
          "-nodefaults",
          "-no-user-config",
          "-display",
          "none",
          "-machine",
          `q35,accel=${accel}`,
          "-cpu",
          accel === "kvm" ? "host" : "max",
          "-bios",
          firmware,
          "-device",
          "isa-debug-exit,iobase=0xf4,iosize=0x04",
          "-no-reboot",
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
        signal: controller.signal,
      },
    ).output().finally(() => clearTimeout(timer));
    if (output.code === PROBE_EXIT_STATUS) return { usable: true };
    if (controller.signal.aborted) {
      return {
        usable: false,
        reason: `a test guest did not reach 64-bit mode within ${timeout} ms ` +
          "(KVM under nested virtualization?)",
      };
    }
    const stderr = new TextDecoder().decode(output.stderr).trim().split("\n")
      .at(-1);
    return {
      usable: false,
      reason: `qemu failed: ${stderr || `exit code ${output.code}`}`,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

let autoChoice: Promise<Accelerator> | undefined;

/**
 * The accelerator for `host.accel`: kvm and tcg as they are; auto probes
 * KVM once per process and falls back to TCG with one warning.
 */
export function resolveAccelerator(
  setting: Accel,
  options: ProbeOptions = {},
): Promise<Accelerator> {
  if (setting !== "auto") return Promise.resolve(setting);
  autoChoice ??= probeAccelerator("kvm", options).then((result) => {
    if (result.usable) return "kvm";
    getLogger(["forrest", "vm"]).warn(
      "KVM is not usable ({reason}); VMs run under TCG, many times slower",
      { reason: result.reason },
    );
    return "tcg";
  });
  return autoChoice;
}
