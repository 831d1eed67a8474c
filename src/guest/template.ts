/**
 * Setup templates: a folder with `cloud-init/` (files for the CIDATA disk)
 * and `job-config/` (files for the JOBDATA disk), the original's layout, so
 * existing templates keep working. Every file is text in which `<KEY>`
 * placeholders are replaced.
 */

import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import {
  forgeOf,
  type Scope,
  scopeSegments,
  type SetupTemplate,
  type Triplet,
} from "../config/mod.ts";

/** Files by path relative to their folder, as text. */
export type TemplateFiles = ReadonlyMap<string, string>;

export interface SetupTemplateContent {
  readonly cloudInit: TemplateFiles;
  readonly jobConfig: TemplateFiles;
}

/** A template that cannot be used, naming the file and what is wrong. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

/** The folder of the template built into Forrest (embedded by deno compile --include). */
export const BUILTIN_TEMPLATE_DIR = fileURLToPath(
  new URL("../../templates/generic", import.meta.url),
);

/** The built-in template of Forgejo machines: forgejo-runner one-job. */
export const BUILTIN_FORGEJO_TEMPLATE_DIR = fileURLToPath(
  new URL("../../templates/forgejo", import.meta.url),
);

/**
 * Parameters the built-in templates understand, with their defaults: a
 * runner to download when the image has none.
 */
export const BUILTIN_TEMPLATE_DEFAULTS: Readonly<Record<string, string>> = {
  RUNNER_VERSION: "",
  RUNNER_SHA256: "",
  FORGEJO_RUNNER_VERSION: "",
  FORGEJO_RUNNER_SHA256: "",
  FORGEJO_RUNNER_URL:
    "https://code.forgejo.org/forgejo/runner/releases/download",
};

/**
 * The built-in template for machines of this scope's forge. Forgejo's has
 * its own job-config/ and shares the guest set-up (cloud-init/) of the
 * GitHub one: the guest contract is the same.
 */
export async function readBuiltinTemplate(
  scope: Scope,
): Promise<SetupTemplateContent> {
  const generic = await readTemplate(BUILTIN_TEMPLATE_DIR);
  if (forgeOf(scope) === undefined) return generic;
  const forgejo = await readTemplate(BUILTIN_FORGEJO_TEMPLATE_DIR);
  return { cloudInit: generic.cloudInit, jobConfig: forgejo.jobConfig };
}

/**
 * Reads a template folder. `job-config/` must exist; `cloud-init/` may be
 * missing for images that need no cloud-init (Forrest's own).
 *
 * @throws {TemplateError} for a missing folder, a file that is not a
 *   regular file, or one that is not UTF-8 text
 */
export async function readTemplate(dir: string): Promise<SetupTemplateContent> {
  return {
    cloudInit: await readTree(join(dir, "cloud-init"), false),
    jobConfig: await readTree(join(dir, "job-config"), true),
  };
}

async function readTree(
  root: string,
  required: boolean,
): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(root);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound && !required) return files;
    if (error instanceof Deno.errors.NotFound) {
      throw new TemplateError(`Template folder "${root}" does not exist`);
    }
    throw error;
  }
  if (!info.isDirectory) {
    throw new TemplateError(`Template path "${root}" is not a folder`);
  }
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const walk = async (dir: string): Promise<void> => {
    const entries = await Array.fromAsync(Deno.readDir(dir));
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) {
        await walk(path);
      } else if (!entry.isFile) {
        throw new TemplateError(
          `Template file "${path}" is ${
            entry.isSymlink ? "a symbolic link" : "not a regular file"
          }: templates hold regular files only`,
        );
      } else {
        try {
          files.set(
            relative(root, path),
            decoder.decode(await Deno.readFile(path)),
          );
        } catch (error) {
          if (!(error instanceof TypeError)) throw error;
          throw new TemplateError(
            `Template file "${path}" is not UTF-8 text: placeholders are replaced in text only`,
          );
        }
      }
    }
  };
  await walk(root);
  return files;
}

/**
 * Replaces every `<KEY>` whose KEY is in `values`, in one pass: a value that
 * itself contains `<OTHER>` is left as it is, so a JIT config or a parameter
 * can never inject another placeholder. Unknown placeholders stay, as in the
 * original (templates may contain other `<WORDS>`).
 */
export function substitute(
  text: string,
  values: Readonly<Record<string, string>>,
): string {
  return text.replace(
    /<([A-Za-z0-9_]+)>/g,
    (match, key: string) => Object.hasOwn(values, key) ? values[key]! : match,
  );
}

/** Upper-case placeholders in `files` that `values` does not fill, for a warning. */
export function unfilledPlaceholders(
  files: TemplateFiles,
  values: Readonly<Record<string, string>>,
): string[] {
  const missing = new Set<string>();
  for (const text of files.values()) {
    for (const [, key] of text.matchAll(/<([A-Z][A-Z0-9_]*)>/g)) {
      if (!Object.hasOwn(values, key!)) missing.add(key!);
    }
  }
  return [...missing].sort();
}

/** The template with `values` substituted into every file. */
export function renderTemplate(
  template: SetupTemplateContent,
  values: Readonly<Record<string, string>>,
): SetupTemplateContent {
  const render = (files: TemplateFiles) =>
    new Map([...files].map(([name, text]) => [name, substitute(text, values)]));
  return {
    cloudInit: render(template.cloudInit),
    jobConfig: render(template.jobConfig),
  };
}

/** What Forrest fills in itself: the FORREST_PLACEHOLDERS of config. */
export interface RunIdentity {
  readonly triplet: Triplet;
  readonly runner: string;
  /**
   * The runner's identity from its forge (`JITCONFIG`, or Forgejo's
   * `RUNNER_UUID`, …); empty values where there is no runner (exec).
   */
  readonly forge: Readonly<Record<string, string>>;
  /** The run's token for the guest API (guest_api/). */
  readonly runToken: string;
}

/** Forge placeholders of a run without a runner (exec): all empty. */
export const NO_RUNNER: Readonly<Record<string, string>> = Object.freeze({
  JITCONFIG: "",
  FORGE_URL: "",
  RUNNER_UUID: "",
  RUNNER_TOKEN: "",
  JOB_HANDLE: "",
  RUNNER_LABELS: "",
  PACKAGE_USER: "",
  PACKAGE_TOKEN: "",
});

/** Whether any of the files names a placeholder of the runner's identity. */
export function usesRunnerIdentity(files: TemplateFiles): boolean {
  const keys = new Set(Object.keys(NO_RUNNER));
  for (const text of files.values()) {
    for (const [, key] of text.matchAll(/<([A-Za-z0-9_]+)>/g)) {
      if (keys.has(key!)) return true;
    }
  }
  return false;
}

/**
 * A machine's setup template (the built-in one of its forge when it names
 * no folder), read and rendered: its parameters over the built-in defaults,
 * then Forrest's own placeholders, which parameters cannot override.
 */
export async function renderSetupTemplate(
  template: SetupTemplate | undefined,
  run: RunIdentity,
): Promise<SetupTemplateContent> {
  return fillSetupTemplate(
    await readSetupTemplate(template, run.triplet.scope),
    template,
    run,
  );
}

/** A machine's setup template as it is, placeholders and all. */
export function readSetupTemplate(
  template: SetupTemplate | undefined,
  scope: Scope,
): Promise<SetupTemplateContent> {
  return template?.path === undefined
    ? readBuiltinTemplate(scope)
    : readTemplate(template.path);
}

/** renderSetupTemplate() of a template read already. */
export function fillSetupTemplate(
  content: SetupTemplateContent,
  template: SetupTemplate | undefined,
  run: RunIdentity,
): SetupTemplateContent {
  const path = template?.path;
  return renderTemplate(content, {
    ...withHashAlias({
      ...(path === undefined ? BUILTIN_TEMPLATE_DEFAULTS : {}),
      ...template?.parameters,
    }),
    ...scopePlaceholders(run.triplet.scope),
    MACHINE_NAME: run.triplet.machine,
    RUNNER_NAME: run.runner,
    ...NO_RUNNER,
    ...run.forge,
    RUN_TOKEN: run.runToken,
  });
}

/**
 * `<SCOPE>` is `owner/repo`, `orgs/ORG` or `enterprises/SLUG`; the
 * original's `<REPO_OWNER>` is the owner, organization or enterprise, and
 * `<REPO_NAME>` the repository, empty for the wider scopes.
 */
function scopePlaceholders(scope: Scope): Record<string, string> {
  const [prefixed, second] = scopeSegments(scope);
  // The forge's own words: `owner/repo` on Forgejo too.
  const first = prefixed.slice(prefixed.indexOf(":") + 1);
  return {
    SCOPE: `${first}/${second}`,
    REPO_OWNER: scope.kind === "repository" ? first : second,
    REPO_NAME: scope.kind === "repository" ? second : "",
  };
}

/**
 * The original's generic template names the runner's checksum RUNNER_HASH,
 * Forrest's RUNNER_SHA256: either parameter fills both placeholders, so
 * each template works with the other's config.
 */
export function withHashAlias(
  parameters: Readonly<Record<string, string>>,
): Record<string, string> {
  const values = { ...parameters };
  const hash = values["RUNNER_SHA256"] || values["RUNNER_HASH"];
  if (hash !== undefined) {
    values["RUNNER_SHA256"] ||= hash;
    values["RUNNER_HASH"] ||= hash;
  }
  return values;
}
