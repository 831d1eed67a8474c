export {
  ForgejoForge,
  type ForgejoForgeOptions,
  forgejoStateDir,
} from "./forgejo_forge.ts";
