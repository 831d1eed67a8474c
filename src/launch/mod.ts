/** Starting a VM in a run directory, and the rule for persisting its disk. */
export {
  kernelCacheDir,
  lateJobDataSupported,
  type Launched,
  type LaunchOptions,
  launchVm,
  type MachineDevices,
} from "./launch.ts";
export { persistIfWanted, type PersistRule } from "./persist_rule.ts";
export {
  GUEST_API_PORT,
  GUEST_API_URL,
  guestApiForward,
} from "./guest_network.ts";
export { machineTpmState } from "./tpm.ts";
