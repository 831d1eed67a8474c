/**
 * A machine: one VM for one just-in-time runner, from its request to its
 * end (product.md §1). The states, which of them count against the budget,
 * and which may be killed when demand drops, cheapest first.
 */

import type { MachineConfig, ScopeConfig, Triplet } from "../config/mod.ts";

export type MachineState =
  | "requested"
  | "registering"
  | "registered"
  | "starting"
  | "waiting"
  | "running"
  | "stopping"
  | "stopped";

/**
 * States of a machine that can still take a new job, cheapest to kill
 * first: the further along, the more work a kill throws away.
 */
export const KILL_ORDER: readonly MachineState[] = [
  "requested",
  "registering",
  "registered",
  "starting",
  "waiting",
];

/** States in which a machine's VM holds (or is about to hold) RAM and CPUs. */
export const BUDGET_STATES: ReadonlySet<MachineState> = new Set([
  "starting",
  "waiting",
  "running",
  "stopping",
]);

export type KillReason =
  /** Demand dropped: a job was cancelled or taken by another runner. */
  | "surplus"
  /** The runner did not come online within `start_timeout`. */
  | "start-timeout"
  /** Forrest is shutting down. */
  | "shutdown";

/** Why a registered machine is not started yet. */
export interface MachineWait {
  readonly reason: string;
  readonly message: string;
  /** Retry after this time even if nothing else changed. */
  readonly until: number;
}

export interface Machine {
  /** Forrest's own id, unique for the life of the process. */
  readonly id: number;
  readonly triplet: Triplet;
  /** The config this machine was created with; reloads do not change it. */
  readonly config: MachineConfig;
  /** Its scope's config (the persistence token), from the same snapshot. */
  readonly scopeConfig: ScopeConfig;
  readonly runnerName: string;
  readonly runnerId: number | undefined;
  readonly state: MachineState;
  /** When the machine entered its state, milliseconds since the epoch. */
  readonly since: number;
  readonly createdAt: number;
  /** When the start decision was made, for the start timeout. */
  readonly startedAt: number | undefined;
  readonly killed: KillReason | undefined;
  readonly wait: MachineWait | undefined;
  /**
   * The one job attempt its runner is made for (Forgejo: the runner is
   * told its handle and takes nothing else); any job of its labels when
   * undefined (GitHub).
   */
  readonly forJob:
    | { readonly key: string; readonly handle: string }
    | undefined;
  /** The job its runner took, once known. */
  readonly jobId: number | undefined;
  /** Its runner took a job (the VM is not wasted when it stops). */
  readonly ranJob: boolean;
}

/**
 * Whether the machine's VM holds (or is about to hold) RAM and CPUs. A
 * machine killed before it was ever started is `stopping` too, while its
 * runner is deleted, but it has no VM.
 */
export function holdsBudget(machine: Machine): boolean {
  return BUDGET_STATES.has(machine.state) && machine.startedAt !== undefined;
}

/** Whether the machine can still take a job that is queued now. */
export function isAvailable(machine: Machine): boolean {
  return machine.killed === undefined && KILL_ORDER.includes(machine.state);
}
