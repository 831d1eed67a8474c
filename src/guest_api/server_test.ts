import assert from "node:assert/strict";
import { join } from "node:path";
import { withTempDir } from "../../tests/temp.ts";
import type { ArtifactStoreConfig } from "../config/mod.ts";
import { Secret } from "../log/secret.ts";
import { newRunToken, RUN_TOKEN_LENGTH } from "./run_token.ts";
import { GuestApi } from "./server.ts";
import { sweepUploads } from "./upload.ts";

const MiB = 1024 * 1024;

/** Every file below `dir`, relative, sorted: what an upload left. */
async function tree(dir: string, prefix = ""): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory) {
      found.push(...await tree(join(dir, entry.name), path));
    } else found.push(path);
  }
  return found.sort();
}

interface Setup {
  readonly dir: string;
  readonly api: GuestApi;
  readonly token: string;
  readonly url: (path: string) => string;
  readonly remove: () => void;
}

async function withApi(
  stores: (dir: string) => ArtifactStoreConfig[],
  body: (setup: Setup) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const api = new GuestApi();
    const port = await api.listen();
    const token = newRunToken();
    const remove = api.runs.add(token, "forrest-build-abc", stores(dir));
    try {
      await body({
        dir,
        api,
        token: token.reveal(),
        url: (path) => `http://127.0.0.1:${port}${path}`,
        remove,
      });
    } finally {
      await api.close();
    }
  });
}

function store(
  dir: string,
  extra: Partial<ArtifactStoreConfig> = {},
): ArtifactStoreConfig {
  return {
    name: "artifact",
    path: join(dir, "store", "<RUNNER_NAME>"),
    url: "https://ci.example.org/artifacts/<RUNNER_NAME>",
    quota: 1 * MiB,
    token: undefined,
    ...extra,
  };
}

/** A body that arrives in chunks with no Content-Length, as the action's. */
function chunked(
  bytes: Uint8Array,
  chunk = 64 * 1024,
): ReadableStream<Uint8Array> {
  let offset = 0;
  return new ReadableStream({
    pull(controller) {
      if (offset >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(offset, offset + chunk));
      offset += chunk;
    },
  });
}

/** A one-byte PUT with curl, which sends what fetch() would tidy up. */
async function curlPut(
  url: string,
  token: string,
  extra: readonly string[],
): Promise<string> {
  const curl = await new Deno.Command("curl", {
    args: [
      "-s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-X",
      "PUT",
      "--data-binary",
      "x",
      "-H",
      `Authorization: Bearer ${token}`,
      ...extra,
      url,
    ],
  }).output();
  return new TextDecoder().decode(curl.stdout);
}

async function put(
  url: string,
  token: string | undefined,
  body: BodyInit | null,
): Promise<Response> {
  const response = await fetch(url, {
    method: "PUT",
    headers: token === undefined ? {} : { authorization: token },
    body,
  });
  await response.body?.cancel();
  return response;
}

Deno.test("newRunToken() gives 32 letters and digits, different each time", () => {
  const tokens = new Set(
    Array.from({ length: 100 }, () => newRunToken().reveal()),
  );
  assert.equal(tokens.size, 100);
  for (const token of tokens) {
    assert.match(token, new RegExp(`^[A-Za-z0-9]{${RUN_TOKEN_LENGTH}}$`));
  }
  assert.equal(String(newRunToken()), "[redacted]");
});

Deno.test("guest API stores a streamed upload and names where it is", async () => {
  await withApi((dir) => [store(dir)], async ({ dir, token, url }) => {
    const data = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
    const response = await put(
      url("/artifact/artifact/deploy/image.wic"),
      `Bearer ${token}`,
      chunked(data),
    );
    assert.equal(response.status, 201);
    assert.equal(
      response.headers.get("content-location"),
      "https://ci.example.org/artifacts/forrest-build-abc/deploy/image.wic",
    );
    const stored = join(dir, "store/forrest-build-abc/deploy/image.wic");
    assert.deepEqual(await Deno.readFile(stored), data);
    assert.deepEqual(await tree(join(dir, "store")), [
      "forrest-build-abc/deploy/image.wic",
    ]);
    // A second upload to the same path replaces the file.
    const again = await put(
      url("/artifact/artifact/deploy/image.wic"),
      `Bearer ${token}`,
      "short",
    );
    assert.equal(again.status, 201);
    assert.equal(await Deno.readTextFile(stored), "short");
  });
});

Deno.test("guest API answers unknown tokens, stores and methods with 404 and 405", async () => {
  await withApi(
    (dir) => [
      store(dir, { name: "release", token: new Secret("store-secret") }),
      store(dir, { name: "open", path: join(dir, "open") }),
    ],
    async ({ dir, token, url, remove }) => {
      const file = url("/artifact/open/x.txt");
      assert.equal((await put(file, undefined, "x")).status, 404);
      assert.equal((await put(file, "Bearer wrong", "x")).status, 404);
      assert.equal((await put(file, `Bearer ${token}x`, "x")).status, 404);
      assert.equal((await put(file, `Basic ${token}`, "x")).status, 404);
      assert.equal((await put(file, `bearer ${token}`, "x")).status, 404);
      const release = url("/artifact/release/v1.tar");
      assert.equal((await put(release, `Bearer ${token}`, "x")).status, 404);
      assert.equal(
        (await put(release, `Bearer ${token} store-wrong`, "x")).status,
        404,
      );
      assert.equal(
        (await put(url("/artifact/nope/x"), `Bearer ${token}`, "x")).status,
        404,
      );
      const get = await fetch(file, {
        headers: { authorization: `Bearer ${token}` },
      });
      await get.body?.cancel();
      assert.equal(get.status, 405);
      assert.equal(get.headers.get("allow"), "PUT");
      for (const method of ["POST", "DELETE"]) {
        const other = await fetch(file, {
          method,
          body: method === "POST" ? "x" : null,
        });
        await other.body?.cancel();
        assert.equal(other.status, 405);
      }
      for (const path of ["/", "/status", "/metrics", "/webhook"]) {
        const other = await fetch(url(path));
        await other.body?.cancel();
        assert.equal(other.status, 404, path);
      }
      assert.deepEqual(await tree(dir), []);
      assert.equal(
        (await put(release, `Bearer ${token} store-secret`, "v1")).status,
        201,
      );
      assert.equal((await put(file, `Bearer ${token}`, "x")).status, 201);
      // Once the machine stops, its token names nothing.
      remove();
      assert.equal((await put(file, `Bearer ${token}`, "y")).status, 404);
      assert.deepEqual(await tree(dir), [
        "open/x.txt",
        "store/forrest-build-abc/v1.tar",
      ]);
    },
  );
});

Deno.test("guest API refuses hostile paths and writes nothing outside the store", async () => {
  await withApi((dir) => [store(dir)], async ({ dir, token, url }) => {
    const port = new URL(url("/")).port;
    const paths = [
      "/artifact/artifact/../../escape",
      "/artifact/artifact/%2e%2e/%2e%2e/escape",
      "/artifact/artifact/a%2f..%2f..%2fescape",
      "/artifact/artifact/a%00b",
      "/artifact/artifact/%zz",
      "/artifact/artifact/",
      "/artifact/artifact/./x",
    ];
    for (const path of paths) {
      // curl sends the path as given; fetch() would resolve the dots first.
      assert.equal(
        await curlPut(`http://127.0.0.1:${port}${path}`, token, [
          "--path-as-is",
        ]),
        "400",
        path,
      );
    }
    assert.deepEqual(await tree(dir), []);
  });
});

Deno.test("guest API keeps each run within its quota, and failed uploads leave nothing", async () => {
  await withApi(
    (dir) => [store(dir, { quota: 1000 })],
    async ({ dir, api, token, url }) => {
      const auth = `Bearer ${token}`;
      const bytes = (n: number) => new Uint8Array(n).fill(65);
      // Announced too large: refused before a byte is read.
      assert.equal(
        (await put(url("/artifact/artifact/a"), auth, bytes(1001))).status,
        507,
      );
      // Streamed past the quota: refused on the way, the part removed.
      assert.equal(
        (await put(
          url("/artifact/artifact/b"),
          auth,
          chunked(bytes(1500), 100),
        )).status,
        507,
      );
      assert.deepEqual(await tree(dir), []);
      // Both gave back what they took: the whole quota is still there.
      assert.equal(
        (await put(url("/artifact/artifact/c"), auth, chunked(bytes(600), 100)))
          .status,
        201,
      );
      assert.equal(
        (await put(url("/artifact/artifact/d"), auth, bytes(400))).status,
        201,
      );
      assert.equal(
        (await put(url("/artifact/artifact/e"), auth, bytes(1))).status,
        507,
      );
      assert.equal(
        (await put(url("/artifact/artifact/f"), auth, "")).status,
        201,
      );
      assert.deepEqual(await tree(join(dir, "store/forrest-build-abc")), [
        "c",
        "d",
        "f",
      ]);
      assert.equal(api.runs.size, 1);
    },
  );
});

Deno.test("guest API shares a run's quota among concurrent uploads", async () => {
  await withApi(
    (dir) => [store(dir, { quota: 100_000 })],
    async ({ dir, token, url }) => {
      const auth = `Bearer ${token}`;
      const sizes = [30_000, 30_000, 30_000, 30_000, 30_000];
      const responses = await Promise.all(sizes.map((size, i) =>
        put(
          url(`/artifact/artifact/part-${i}`),
          auth,
          chunked(new Uint8Array(size), 1000),
        )
      ));
      const statuses = responses.map((r) => r.status);
      assert.ok(
        statuses.every((s) => s === 201 || s === 507),
        String(statuses),
      );
      const written = await tree(join(dir, "store/forrest-build-abc"));
      const ok = statuses.filter((s) => s === 201).length;
      assert.equal(written.length, ok);
      assert.ok(
        ok * 30_000 <= 100_000,
        `${ok} uploads of 30000 bytes fit in 100000`,
      );
      // What is left is exactly what the stored files did not use.
      const rest = 100_000 - ok * 30_000;
      assert.equal(
        (await put(url("/artifact/artifact/rest"), auth, new Uint8Array(rest)))
          .status,
        201,
      );
      assert.equal(
        (await put(url("/artifact/artifact/more"), auth, "x")).status,
        507,
      );
    },
  );
});

Deno.test("guest API removes an upload that is cut off and gives its bytes back", async () => {
  await withApi(
    (dir) => [store(dir, { quota: 10_000 })],
    async ({ dir, token, url }) => {
      const { port } = new URL(url("/"));
      const connection = await Deno.connect({
        hostname: "127.0.0.1",
        port: Number(port),
      });
      await connection.write(new TextEncoder().encode(
        `PUT /artifact/artifact/cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
          `Content-Length: 10000\r\n\r\n${"x".repeat(4000)}`,
      ));
      // The partial file exists while the upload runs...
      const store = join(dir, "store/forrest-build-abc");
      for (let i = 0; i < 200; i++) {
        if ((await tree(dir)).length > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.equal((await tree(store)).length, 1);
      assert.match((await tree(store))[0]!, /^\.forrest-upload-[0-9a-f]{16}$/);
      connection.close();
      // ...and is gone once the client has gone.
      for (let i = 0; i < 200 && (await tree(store)).length > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.deepEqual(await tree(store), []);
      assert.equal(
        (await put(
          url("/artifact/artifact/full"),
          `Bearer ${token}`,
          new Uint8Array(10_000),
        )).status,
        201,
      );
    },
  );
});

Deno.test("guest API answers 409 where a file and a folder of the path collide", async () => {
  await withApi((dir) => [store(dir)], async ({ dir, token, url }) => {
    const auth = `Bearer ${token}`;
    assert.equal(
      (await put(url("/artifact/artifact/a/b"), auth, "1")).status,
      201,
    );
    assert.equal(
      (await put(url("/artifact/artifact/a/b/c"), auth, "2")).status,
      409,
    );
    assert.equal(
      (await put(url("/artifact/artifact/a"), auth, "3")).status,
      409,
    );
    assert.deepEqual(await tree(join(dir, "store")), ["forrest-build-abc/a/b"]);
  });
});

Deno.test("guest API tells every answer's outcome, with the bytes stored", async () => {
  await withTempDir(async (dir) => {
    const seen: string[] = [];
    const api = new GuestApi({
      observe: (outcome, bytes) => seen.push(`${outcome} ${bytes}`),
    });
    const port = await api.listen();
    const token = newRunToken();
    api.runs.add(token, "forrest-build-abc", [store(dir, { quota: 10 })]);
    const url = (path: string) => `http://127.0.0.1:${port}${path}`;
    const auth = `Bearer ${token.reveal()}`;
    try {
      await put(url("/artifact/artifact/a"), auth, "12345");
      await put(url("/artifact/artifact/b"), auth, "123456");
      await put(url("/artifact/artifact/c"), "Bearer x", "1");
      await put(url("/artifact/other/c"), auth, "1");
      await put(url("/artifact/artifact/%2e%2e"), auth, "1");
      await put(url("/nothing"), auth, "1");
      const get = await fetch(url("/artifact/artifact/a"));
      await get.body?.cancel();
    } finally {
      await api.close();
    }
    assert.deepEqual(seen, [
      "stored 5",
      "over_quota 0",
      "unknown_token 0",
      "unknown_store 0",
      "bad_request 0",
      "not_found 0",
      "bad_method 0",
    ]);
  });
});

Deno.test("sweepUploads() removes what cut-off uploads left, and nothing else", async () => {
  await withTempDir(async (dir) => {
    const files = [
      "a/.forrest-upload-0123456789abcdef",
      "a/b/.forrest-upload-fedcba9876543210",
      "a/.forrest-upload-short",
      "a/kept.bin",
      ".forrest-upload-0123456789abcdeg",
    ];
    for (const file of files) {
      await Deno.mkdir(join(dir, file, ".."), { recursive: true });
      await Deno.writeTextFile(join(dir, file), "x");
    }
    assert.equal(await sweepUploads(dir), 2);
    assert.deepEqual(await tree(dir), [
      ".forrest-upload-0123456789abcdeg",
      "a/.forrest-upload-short",
      "a/kept.bin",
    ]);
    assert.equal(await sweepUploads(join(dir, "missing")), 0);
  });
});

Deno.test("guest API refuses a Host header that would change the path", async () => {
  await withApi((dir) => [store(dir)], async ({ dir, token, url }) => {
    const { port } = new URL(url("/"));
    assert.equal(
      await curlPut(`http://127.0.0.1:${port}/f`, token, [
        "-H",
        "Host: x/artifact/artifact/hosty",
      ]),
      "400",
    );
    assert.deepEqual(await tree(dir), []);
  });
});

Deno.test("guest API refuses a path through a symbolic link out of the store", async () => {
  await withApi((dir) => [store(dir)], async ({ dir, token, url }) => {
    const folder = join(dir, "store/forrest-build-abc");
    await Deno.mkdir(folder, { recursive: true });
    await Deno.mkdir(join(dir, "outside"));
    await Deno.symlink(join(dir, "outside"), join(folder, "link"));
    const response = await put(
      url("/artifact/artifact/link/x"),
      `Bearer ${token}`,
      "x",
    );
    assert.equal(response.status, 409);
    assert.deepEqual(await tree(join(dir, "outside")), []);
  });
});

Deno.test("guest API takes a declared length from the quota before reading", async () => {
  await withApi(
    (dir) => [store(dir, { quota: 1000 })],
    async ({ dir, token, url }) => {
      const { port } = new URL(url("/"));
      // An upload that declares 600 bytes and has sent 100 holds all 600...
      const connection = await Deno.connect({
        hostname: "127.0.0.1",
        port: Number(port),
      });
      try {
        await connection.write(new TextEncoder().encode(
          `PUT /artifact/artifact/slow HTTP/1.1\r\nHost: x\r\n` +
            `Authorization: Bearer ${token}\r\nContent-Length: 600\r\n\r\n${
              "a".repeat(100)
            }`,
        ));
        for (let i = 0; i < 100 && (await tree(dir)).length === 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        // ...so one of 500 does not fit, though only 100 have arrived.
        assert.equal(
          (await put(
            url("/artifact/artifact/second"),
            `Bearer ${token}`,
            new Uint8Array(500),
          )).status,
          507,
        );
        await connection.write(new TextEncoder().encode("b".repeat(500)));
        const buffer = new Uint8Array(1024);
        const n = await connection.read(buffer);
        assert.match(
          new TextDecoder().decode(buffer.subarray(0, n ?? 0)),
          /^HTTP\/1\.1 201 /,
        );
      } finally {
        connection.close();
      }
      assert.equal(
        (await put(
          url("/artifact/artifact/rest"),
          `Bearer ${token}`,
          new Uint8Array(400),
        )).status,
        201,
      );
      assert.equal(
        (await put(url("/artifact/artifact/more"), `Bearer ${token}`, "x"))
          .status,
        507,
      );
    },
  );
});

Deno.test("guest API cuts off an upload that stalls, and limits uploads under way per run", async () => {
  await withTempDir(async (dir) => {
    const api = new GuestApi({ idleTimeout: 300 });
    const port = await api.listen();
    const token = newRunToken();
    api.runs.add(token, "forrest-build-abc", [store(dir)]);
    const connections: Deno.TcpConn[] = [];
    try {
      const stall = async (name: string) => {
        const connection = await Deno.connect({ hostname: "127.0.0.1", port });
        connections.push(connection);
        await connection.write(new TextEncoder().encode(
          `PUT /artifact/artifact/${name} HTTP/1.1\r\nHost: x\r\n` +
            `Authorization: Bearer ${token.reveal()}\r\nContent-Length: 1000\r\n\r\nxx`,
        ));
        return connection;
      };
      const stalled = await Promise.all(
        Array.from({ length: 8 }, (_, i) => stall(`stalled-${i}`)),
      );
      for (let i = 0; i < 100 && (await tree(dir)).length < 8; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const ninth = await put(
        `http://127.0.0.1:${port}/artifact/artifact/ninth`,
        `Bearer ${token.reveal()}`,
        "x",
      );
      assert.equal(ninth.status, 429);
      // Each stalled upload is cut off: an answer, and nothing left.
      for (const connection of stalled) {
        const buffer = new Uint8Array(1024);
        const n = await connection.read(buffer);
        assert.match(
          new TextDecoder().decode(buffer.subarray(0, n ?? 0)),
          /^HTTP\/1\.1 400 /,
        );
      }
      assert.deepEqual(await tree(dir), []);
      assert.equal(
        (await put(
          `http://127.0.0.1:${port}/artifact/artifact/later`,
          `Bearer ${token.reveal()}`,
          "x",
        )).status,
        201,
      );
    } finally {
      for (const connection of connections) connection.close();
      await api.close();
    }
  });
});
