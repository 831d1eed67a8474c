import assert from "node:assert/strict";
import { type Browser, withBrowser } from "./browser.ts";
import { withTempDir } from "./temp.ts";

/** Markup and script that must show up as text, never run. */
const HOSTILE =
  `</p><script>alert("xss")</script><img src=x onerror=alert(1)>` +
  ` &amp; \u202e \u{1F332} "quotes" 'too'`;

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Test page</title></head>
<body><h1 id="state">loading</h1><p id="note"></p><script src="/app.js"></script></body></html>`;

/** Like the dashboard: every view comes as a server-sent event. */
const APP = `
const state = document.getElementById("state");
const note = document.getElementById("note");
const events = new EventSource("/events");
events.onmessage = (event) => {
  const view = JSON.parse(event.data);
  state.textContent = view.state;
  note.textContent = view.note;
};`;

const THROWING_PAGE = `<!doctype html>
<html><head><title>Throws</title></head><body>
<script>document.title = "inline ran"</script><script src="/throws.js"></script></body></html>`;

interface Site {
  url: string;
  /** Sends a view to every page listening on /events. */
  push(view: { state: string; note: string }): void;
}

/**
 * A test page on 127.0.0.1 under the dashboard's kind of CSP, whose
 * /events stream sends `booting` first and then what the test pushes.
 */
async function withSite(body: (site: Site) => Promise<void>): Promise<void> {
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const event = (view: unknown) =>
    new TextEncoder().encode(`data: ${JSON.stringify(view)}\n\n`);
  const headers = (type: string) => ({
    "content-type": type,
    "content-security-policy": "default-src 'self'",
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) => {
      switch (new URL(request.url).pathname) {
        case "/":
          return new Response(PAGE, { headers: headers("text/html") });
        case "/app.js":
          return new Response(APP, { headers: headers("text/javascript") });
        case "/throws":
          return new Response(THROWING_PAGE, {
            headers: headers("text/html"),
          });
        case "/throws.js":
          return new Response(
            `console.error("console.error called", 42); throw new Error("boom");`,
            { headers: headers("text/javascript") },
          );
        case "/events": {
          let stream: ReadableStreamDefaultController<Uint8Array>;
          return new Response(
            new ReadableStream<Uint8Array>({
              start(controller) {
                stream = controller;
                streams.add(controller);
                controller.enqueue(event({ state: "booting", note: HOSTILE }));
              },
              cancel() {
                streams.delete(stream);
              },
            }),
            { headers: headers("text/event-stream") },
          );
        }
        default:
          return new Response("not found", { status: 404 });
      }
    },
  );
  try {
    await body({
      url: `http://127.0.0.1:${server.addr.port}`,
      push: (view) => {
        for (const stream of streams) stream.enqueue(event(view));
      },
    });
  } finally {
    for (const stream of streams) {
      try {
        stream.close();
      } catch {
        // The browser hung up as this closed it.
      }
    }
    await server.shutdown();
  }
}

/**
 * Live processes in process group `pgid` (Chromium and its helpers), as
 * "pid state command"; a zombie waits for init to reap it and holds nothing.
 */
async function groupMembers(pgid: number): Promise<string[]> {
  const members: string[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`)
      .catch(() => "");
    // After "(command name)": state, ppid, pgrp.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") {
      members.push(
        `${entry.name} ${state} ${stat.slice(0, stat.lastIndexOf(")") + 1)}`,
      );
    }
  }
  return members;
}

/** A loopback port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return listener.addr.port;
}

Deno.test("withBrowser() opens a page whose text changes without a reload", async () => {
  await withSite((site) =>
    withBrowser(async (browser) => {
      const page = await browser.open(`${site.url}/`);
      await page.waitFor(
        `document.getElementById("state").textContent === "booting"`,
        3_000,
        "the first view",
      );
      assert.equal(await page.text("#note"), HOSTILE);
      assert.equal(
        await page.evaluate("document.querySelectorAll('#note *').length"),
        0,
      );

      site.push({ state: "running", note: "ready" });
      await page.waitFor(
        `document.getElementById("state").textContent === "running"`,
        3_000,
        "the view pushed after load",
      );
      assert.equal(await page.text("#state"), "running");
      assert.equal(await page.text("#note"), "ready");
      assert.equal(await page.text("#missing"), "");
      assert.equal(await page.evaluate("document.title"), "Test page");
      assert.equal(page.reloads(), 0);

      await withTempDir(async (dir) => {
        await page.screenshot(`${dir}/page.png`);
        const png = await Deno.readFile(`${dir}/page.png`);
        assert.deepEqual(
          [...png.subarray(0, 8)],
          [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
        );
        const header = new DataView(png.buffer, png.byteOffset);
        assert.deepEqual([header.getUint32(16), header.getUint32(20)], [
          1280,
          900,
        ]);
        assert.ok(
          png.length > 1_000 && png.length < 5_000_000,
          `${png.length}`,
        );
      });
      assert.deepEqual(page.consoleErrors(), []);
      await page.close();
    })
  );
});

Deno.test("Page.reloads() counts a reload", async () => {
  await withSite((site) =>
    withBrowser(async (browser) => {
      const page = await browser.open(`${site.url}/`);
      assert.equal(page.reloads(), 0);
      await page.evaluate("location.reload()");
      await page.waitFor(
        `performance.getEntriesByType("navigation")[0].type === "reload" &&
          document.getElementById("state").textContent === "booting"`,
        3_000,
        "the reloaded page",
      );
      assert.equal(page.reloads(), 1);
    })
  );
});

Deno.test("Page.consoleErrors() has exceptions, console.error and CSP violations", async () => {
  await withSite((site) =>
    withBrowser(async (browser) => {
      const page = await browser.open(`${site.url}/throws`);
      const errors = page.consoleErrors();
      assert.equal(errors.length, 3, errors.join("\n"));
      assert.match(errors[0] ?? "", /Content Security Policy/);
      assert.equal(errors[1], "console.error called 42");
      assert.match(errors[2] ?? "", /^Error: boom\n.*throws\.js/);
      assert.equal(await page.evaluate("document.title"), "Throws");
    })
  );
});

Deno.test("Page.evaluate() and waitFor() say what went wrong", async () => {
  await withSite((site) =>
    withBrowser(async (browser) => {
      const page = await browser.open(`${site.url}/`);
      assert.equal(await page.evaluate("Promise.resolve(6 * 7)"), 42);
      await assert.rejects(
        page.evaluate("nothing.here"),
        /Cannot evaluate "nothing.here": ReferenceError: nothing is not defined/,
      );
      await assert.rejects(
        page.waitFor("false", 500, "a miracle"),
        /Timed out after 500 ms waiting for a miracle/,
      );
      await assert.rejects(
        page.waitFor("document.body.nope.deeper", 500, "nothing"),
        /waiting for nothing: .*TypeError: Cannot read properties of undefined/,
      );
      // A dialog would block every later call until it is answered.
      await page.evaluate(`alert("hello")`);
      assert.deepEqual(page.consoleErrors(), ["alert dialog: hello"]);
      const url = `http://127.0.0.1:${closedPort()}/`;
      await assert.rejects(
        browser.open(url),
        new RegExp(`Cannot load "${url}": net::ERR_CONNECTION_REFUSED`),
      );
    })
  );
});

Deno.test("withBrowser() ends Chromium and removes its profile when the body throws", async () => {
  let seen: Browser | undefined;
  await assert.rejects(
    withBrowser((browser) => {
      seen = browser;
      return Promise.reject(new Error("the body failed"));
    }),
    /the body failed/,
  );
  assert.ok(seen);
  assert.deepEqual(await groupMembers(seen.pid), []);
  await assert.rejects(Deno.stat(seen.profileDir), Deno.errors.NotFound);
});

/** Runs `body` with PATH set to `path` alone. */
async function withPath(path: string, body: () => Promise<void>) {
  const saved = Deno.env.get("PATH") ?? "";
  Deno.env.set("PATH", path);
  try {
    await body();
  } finally {
    Deno.env.set("PATH", saved);
  }
}

Deno.test("withBrowser() names the package when Chromium is missing", async () => {
  await withTempDir((dir) =>
    withPath(dir, async () => {
      await assert.rejects(
        withBrowser(() => Promise.resolve()),
        /Cannot find chromium or chromium-browser on PATH: install Debian's "chromium" package/,
      );
    })
  );
});

Deno.test("withBrowser() shows Chromium's stderr when it exits at start", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/chromium`,
      "#!/bin/sh\necho 'Missing X server or $DISPLAY' >&2\nexit 1\n",
      { mode: 0o755 },
    );
    await withPath(dir, async () => {
      await assert.rejects(
        withBrowser(() => Promise.resolve()),
        /Chromium exited before it listened:\nMissing X server or \$DISPLAY/,
      );
    });
  });
});
