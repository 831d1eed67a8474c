/**
 * Virtual machines: the qemu command line, the accelerator, direct kernel
 * boot, the QMP client and the supervisor with its stop ladder.
 */
export {
  type Accelerator,
  type Boot,
  buildQemuArgv,
  type DiskCache,
  FORWARD_ADDRESS,
  type GuestForward,
  isIsolated,
  JOBDATA_PORT,
  kernelCommandLine,
  type Network,
  NETWORK_MODES,
  type NetworkMode,
  OUTPUT_PORT_NAME,
  type QemuArgvOptions,
  READY_PORT_ID,
  READY_PORT_NAME,
  type Share,
  UPLINK_MAC,
  type VdeNic,
  type VmFiles,
} from "./argv.ts";
export { MacPool } from "./mac_pool.ts";
export {
  probeAccelerator,
  probeFirmware,
  resolveAccelerator,
} from "./accel.ts";
export {
  extractFile,
  findKernel,
  isExtFileSystem,
  type KernelFiles,
  readImageText,
} from "./kernel.ts";
export { isReadyEvent, plugJobData } from "./late_jobdata.ts";
export {
  QmpClient,
  QmpCommandError,
  QmpConnectionError,
  QmpError,
  type QmpEvent,
  QmpTimeoutError,
} from "./qmp.ts";
export {
  HelperProcess,
  type HelperRecord,
  HelperStartError,
  isHelperRunning,
  stopLeftoverHelper,
} from "./helper_process.ts";
export { QemuVm, type StopStep, type VmExit, VmStartError } from "./qemu.ts";
