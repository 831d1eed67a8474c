/** A static HTTP server on 127.0.0.1 for one test: path → bytes, else 404. */
export async function withServer(
  files: Record<string, Uint8Array>,
  body: (url: string) => Promise<void>,
): Promise<void> {
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
  }, (request) => {
    const data = files[new URL(request.url).pathname];
    return data
      ? new Response(new Uint8Array(data))
      : new Response("not found", { status: 404 });
  });
  try {
    await body(`http://127.0.0.1:${server.addr.port}`);
  } finally {
    await server.shutdown();
  }
}
