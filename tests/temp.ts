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
