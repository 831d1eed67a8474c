/**
 * A machine: one VM for one just-in-time runner, from its request to its
 * end (product.md §1). The states, which of them count against the budget,
 * and which may be killed when demand drops, cheapest first.
 *
 * A warm machine (product.md §13) is one without a runner yet: it boots,
 * says it waits for its JOBDATA (`warm`), and is assigned a runner when a
 * job comes. A machine for a job registers its runner while it boots.
 */

import type { MachineConfig, ScopeConfig, Triplet } from "../config/mod.ts";

export type MachineState =
  | "requested"
  | "registering"
  | "registered"
  | "starting"
  /** Booted without a runner, waiting to be given one (min_idle). */
  | "warm"
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
  "warm",
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
  | "shutdown"
  /** A warm machine whose image changed since it booted (a persist, a rebuild). */
  | "stale-image"
  /** A warm machine gives its RAM and CPUs to a queued job of another type. */
  | "make-room"
  /** Its runner could not be registered, and its VM had started already. */
  | "register-failed";

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
  /**
   * It has, or is getting, a runner: made for demand, or a warm machine
   * given a job. A warm machine has none until then.
   */
  readonly assigned: boolean;
  /** Its guest booted and waits for JOBDATA (a late-JOBDATA image). */
  readonly ready: boolean;
  /**
   * When its start timeout counts from: its start, or a warm machine's
   * assignment.
   */
  readonly timeoutFrom: number | undefined;
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
  /** The image its VM started from (absolute), once it started. */
  readonly image?: string;
  /** Seconds from its VM's start to its runner online (or warm). */
  readonly bootSeconds?: number;
  /** Seconds from its job queued to its runner taking it. */
  readonly pickupSeconds?: number;
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

/** A warm machine (booting or booted) that no job has been given yet. */
export function isSpare(machine: Machine): boolean {
  return !machine.assigned && machine.killed === undefined &&
    (machine.state === "requested" || machine.state === "starting" ||
      machine.state === "warm");
}
