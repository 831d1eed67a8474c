/**
 * The pure core of `forrest serve`: jobs, demand, machines and the
 * scheduler. Events in, decisions out; no I/O, no clock.
 */
export {
  Core,
  type CoreOptions,
  type Decision,
  DEFAULT_CORE_OPTIONS,
  type Observations,
  type RunnerReport,
  type Status,
  type StatusJob,
  type StatusMachine,
  type StatusRecent,
  type StatusScaleSet,
} from "./core.ts";
export {
  type ForgeJobStatus,
  type JobChange,
  type JobReport,
  JobTracker,
  TRACKED_JOB_STATUSES,
  type TrackedJob,
} from "./jobs.ts";
export {
  isServed,
  type JobOrigin,
  machineForJob,
  runnerLabels,
  sameName,
  tripletKey,
} from "./labels.ts";
export {
  BUDGET_STATES,
  isAvailable,
  KILL_ORDER,
  type KillReason,
  type Machine,
  type MachineState,
  type MachineWait,
} from "./machine.ts";
