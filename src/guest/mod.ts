/**
 * The guest contract (product.md §6): setup templates rendered onto the
 * CIDATA and JOBDATA FAT disks, and the job's results read back.
 */
export {
  BUILTIN_FORGEJO_TEMPLATE_DIR,
  BUILTIN_TEMPLATE_DEFAULTS,
  BUILTIN_TEMPLATE_DIR,
  fillSetupTemplate,
  NO_RUNNER,
  readBuiltinTemplate,
  readSetupTemplate,
  readTemplate,
  renderSetupTemplate,
  renderTemplate,
  type RunIdentity,
  type SetupTemplateContent,
  substitute,
  TemplateError,
  type TemplateFiles,
  unfilledPlaceholders,
  usesRunnerIdentity,
} from "./template.ts";
export {
  CIDATA_LABEL,
  type ConfigDiskPaths,
  JOB_RESULT_MAX_BYTES,
  JOBDATA_LABEL,
  type JobResult,
  parseExitCode,
  readJobResult,
  writeConfigDisks,
  writeJobData,
} from "./config_disks.ts";
export {
  type DiskFiles,
  readFatFile,
  type ReadFatFileOptions,
  readFatLabel,
  writeFatImage,
} from "./fat.ts";
