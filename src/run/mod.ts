/** Run directories: one per VM, with its disk, config disks, logs and sockets. */
export {
  checkRunnerName,
  KEPT_RUN_FILES,
  RUN_FILES,
  RunDir,
  RunDirError,
  runDirPath,
  type RunRecord,
} from "./run_dir.ts";
export {
  checkSocketBaseDir,
  MAX_BASE_DIR,
  MAX_SOCKET_NAME,
  MAX_SOCKET_PATH,
  RUN_SOCKETS,
  type RunSocket,
  runSocketDir,
} from "./socket_dir.ts";
export { randomSuffix } from "./runner_name.ts";
