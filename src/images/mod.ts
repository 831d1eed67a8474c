/** Images: forking them for runs (and, later, persisting and building them). */
export {
  type CloneMethod,
  type CloneSetting,
  DiskForker,
  type Fork,
  ForkError,
  type ForkOptions,
} from "./fork.ts";
export {
  chooseImage,
  type ImageChoice,
  type ImageFacts,
  type ImageFile,
  type WaitReason,
} from "./choose.ts";
export {
  imageFacts,
  machineImagePath,
  quarantineImage,
} from "./machine_images.ts";
export {
  persistFork,
  type PersistOptions,
  type PersistStep,
  removePersistLeftovers,
  tokenMatches,
} from "./persist.ts";
