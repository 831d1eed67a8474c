/**
 * What a test left running: processes whose working directory is under
 * `dir`, or whose command line names a path under it (pasta leaves its
 * working directory, but its pid file is in the run directory).
 */
export async function processesUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cwd = await Deno.readLink(`/proc/${entry.name}/cwd`).catch(() => "");
    const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`)
      .catch(() => "");
    if (
      cwd === dir || cwd.startsWith(`${dir}/`) ||
      cmdline.split("\0").some((arg) => arg.startsWith(`${dir}/`))
    ) pids.push(Number(entry.name));
  }
  return pids;
}

/** Every file below `dir` (folders left out), relative to it, sorted. */
export async function filesUnder(dir: string): Promise<string[]> {
  const files: string[] = [];
  const walk = async (path: string, prefix: string) => {
    for await (const entry of Deno.readDir(path)) {
      if (entry.isDirectory) {
        await walk(`${path}/${entry.name}`, `${prefix}${entry.name}/`);
      } else files.push(`${prefix}${entry.name}`);
    }
  };
  await walk(dir, "");
  return files.sort();
}
