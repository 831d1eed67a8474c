/** Images: forking them for runs, persisting and compacting them, building them. */
export {
  type CloneMethod,
  type CloneSetting,
  convertToRaw,
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
  machineTpmPath,
  quarantineImage,
} from "./machine_images.ts";
export {
  persistFork,
  type PersistOptions,
  type PersistStep,
  removePersistLeftovers,
  tokenMatches,
} from "./persist.ts";
export {
  type ByteRange,
  type CopyPlan,
  countExtents,
  dataExtents,
  DEFRAGMENT_THRESHOLD,
  defragmentImage,
  type DefragmentOptions,
  type DefragmentResult,
  type DefragmentStep,
  planCopy,
} from "./defragment.ts";
export {
  buildDebianImage,
  type BuildDebianOptions,
  BuildError,
  type BuildReporter,
  DEBIAN_RELEASES,
  type DebianRelease,
  DEFAULT_CLOUD_URL,
  DEFAULT_FORGEJO_RUNNER_URL,
  DEFAULT_RUNNER_URL,
  installForgejoRunner,
  installRunner,
  type RunnerRelease,
} from "./build_debian.ts";
export { download, DownloadError, fetchText } from "./download.ts";
export {
  GUEST_FEATURES,
  GUEST_FEATURES_PATH,
  type GuestFeature,
} from "./debian_overlay.ts";
export { type ImageEntry, listImages } from "./list.ts";
export { fastInitrd, INITRD_MODULES, writeFastInitrds } from "./initrd.ts";
export {
  buildOciImage,
  type BuildOciOptions,
  type OciBuilt,
} from "./build_oci.ts";
export {
  guestFamily,
  ociImageName,
  type OciSource,
  parseOciSource,
} from "./oci_source.ts";
export {
  BUILD_RECORD_PATH,
  type BuildRecord,
  describeBuild,
  readBuildRecord,
} from "./build_record.ts";
