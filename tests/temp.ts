/** A temp folder for one test, removed afterwards however the test ends. */
export async function withTempDir<T>(
  body: (dir: string) => Promise<T>,
  prefix = "forrest-test-",
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix });
  try {
    return await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * A folder below `dir` whose absolute path is `length` bytes long (not
 * made), for tests of long base_dirs.
 */
export function pathOfLength(dir: string, length: number): string {
  const padding = length - dir.length - 1;
  if (padding < 1) {
    throw new RangeError(
      `Cannot make a path of ${length} bytes below "${dir}"`,
    );
  }
  return `${dir}/${"d".repeat(padding)}`;
}
