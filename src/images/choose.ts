/**
 * Which image a run starts from: the machine's own persisted image, or its
 * base (another machine's persisted image, or a src image), by `use_base`.
 * Pure: the facts (which images exist, how old, whether the base machine
 * runs) come in, a decision goes out; images.ts gathers the facts.
 */

import type { UseBase } from "../config/mod.ts";

export interface ImageFile {
  readonly path: string;
  /** Modification time, milliseconds since the epoch. */
  readonly mtime: number;
}

export interface ImageFacts {
  /** `machines/<owner>/<repo>/<machine>.img`, if a run has persisted one. */
  readonly own: ImageFile | undefined;
  /** Where the base would be; undefined when that file does not exist. */
  readonly base: ImageFile | undefined;
  /**
   * The base's path, for messages when it does not exist; undefined for a
   * machine without a base, which starts only from its own image.
   */
  readonly basePath: string | undefined;
  /** Where the machine's own image would be, for messages. */
  readonly ownPath: string;
  /** The base is a machine, and one of its runs is under way. */
  readonly baseMachineRunning: boolean;
}

export type ImageChoice =
  | {
    readonly kind: "start";
    readonly image: string;
    readonly from: "own" | "base";
  }
  | {
    readonly kind: "wait";
    readonly reason: WaitReason;
    readonly message: string;
  };

export type WaitReason = "base-machine-running" | "no-image";

/**
 * Decides the image of a run.
 *
 * - `always`: the base, never the machine's own image.
 * - `never`: the machine's own image; the base only before the first persist.
 * - `if_newer`: the newer of the two.
 *
 * When the base machine is running and the base could be chosen, the run
 * waits: that run may be about to persist a newer base (the original waits
 * for the same reason). A missing image is a wait, not an error: the image
 * may be built or persisted later.
 */
export function chooseImage(useBase: UseBase, facts: ImageFacts): ImageChoice {
  const { own, base } = facts;
  const baseCounts = useBase !== "never" || own === undefined;
  if (baseCounts && facts.baseMachineRunning) {
    return {
      kind: "wait",
      reason: "base-machine-running",
      message:
        "waiting for the base machine to stop (it may persist a newer image)",
    };
  }
  const useOwn = own !== undefined && (
    useBase === "never" ||
    (useBase === "if_newer" && (base === undefined || own.mtime >= base.mtime))
  );
  if (useOwn) return { kind: "start", image: own.path, from: "own" };
  if (base !== undefined) {
    return { kind: "start", image: base.path, from: "base" };
  }
  if (facts.basePath === undefined) {
    return {
      kind: "wait",
      reason: "no-image",
      message: `waiting for an image: ${facts.ownPath} does not exist, ` +
        "and the machine has no base_image or base_machine to start from",
    };
  }
  return {
    kind: "wait",
    reason: "no-image",
    message: `waiting for an image: ${facts.basePath} does not exist${
      useBase === "always" ? "" : " and no run has persisted one yet"
    }`,
  };
}
