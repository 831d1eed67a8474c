/**
 * Where `exec` and `shell` find their base directory and host settings: a
 * config file when one is named (--config or $FORREST_CONFIG), else
 * defaults, so that both work with no config at all. --base-dir wins.
 */

import { join } from "node:path";
import {
  type Accel,
  type CloneSetting,
  type Config,
  loadConfig,
} from "../config/mod.ts";

/** The config file when none is named. */
export const DEFAULT_CONFIG = "forrest.toml";

export interface HostSettings {
  readonly baseDir: string;
  readonly accel: Accel;
  readonly clone: CloneSetting;
  /** The config these came from, when a config file was named. */
  readonly config: Config | undefined;
}

export interface HostSettingsOptions {
  readonly config: string | undefined;
  readonly baseDir: string | undefined;
  readonly env: (name: string) => string | undefined;
}

/** `$XDG_DATA_HOME/forrest`, or `~/.local/share/forrest`. */
export function defaultBaseDir(
  env: (name: string) => string | undefined,
): string {
  const data = env("XDG_DATA_HOME") ||
    join(env("HOME") ?? "/var/lib", ".local/share");
  return join(data, "forrest");
}

/** @throws {ConfigError} when a named config file has problems */
export async function hostSettings(
  options: HostSettingsOptions,
): Promise<HostSettings> {
  const file = options.config ?? options.env("FORREST_CONFIG");
  if (file !== undefined) {
    const config = await loadConfig(file);
    return {
      baseDir: options.baseDir ?? config.host.baseDir,
      accel: config.host.accel,
      clone: config.host.clone,
      config,
    };
  }
  return {
    baseDir: options.baseDir ?? defaultBaseDir(options.env),
    accel: "auto",
    clone: "auto",
    config: undefined,
  };
}
