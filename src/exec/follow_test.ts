import assert from "node:assert/strict";
import { join } from "node:path";
import { followFile } from "./follow.ts";

Deno.test("followFile() streams appends and reads the rest after the stop", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "output.txt");
    const seen: string[] = [];
    const decoder = new TextDecoder();
    const stop = new AbortController();
    const firstChunk = Promise.withResolvers<void>();
    const following = followFile(
      path,
      (chunk) => {
        seen.push(decoder.decode(chunk));
        firstChunk.resolve();
      },
      stop.signal,
      { interval: 5 },
    );
    // The file appears after the follower starts, as qemu creates it.
    await Deno.writeTextFile(path, "one\n");
    await firstChunk.promise;
    await Deno.writeTextFile(path, "two\n", { append: true });
    stop.abort(); // written just before the stop: must not be lost
    await following;
    assert.equal(seen.join(""), "one\ntwo\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("followFile() ends quietly when the file never appeared", async () => {
  const stop = new AbortController();
  stop.abort();
  await followFile(
    "/nonexistent/output.txt",
    () => assert.fail("nothing to read"),
    stop.signal,
  );
});
