/** The host at the edges: programs Forrest runs. */
export {
  CommandError,
  run,
  runChecked,
  runGroupChecked,
  type RunOptions,
  type RunResult,
} from "./command.ts";
export { fsync, isWithin, pathExists } from "./fs.ts";
