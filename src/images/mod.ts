/** Images: forking them for runs (and, later, persisting and building them). */
export {
  type CloneMethod,
  type CloneSetting,
  DiskForker,
  type Fork,
  ForkError,
  type ForkOptions,
} from "./fork.ts";
