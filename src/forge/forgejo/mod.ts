export {
  ForgejoForge,
  type ForgejoForgeOptions,
  forgejoStateDir,
} from "./forgejo_forge.ts";
export { ciUserName } from "./ci_users.ts";
