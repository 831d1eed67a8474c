/** Run directories: one per VM, with its disk, config disks, logs and sockets. */
export {
  checkRunnerName,
  RUN_FILES,
  RunDir,
  RunDirError,
  runDirPath,
  type RunRecord,
  runVmFiles,
} from "./run_dir.ts";
export { randomSuffix } from "./runner_name.ts";
