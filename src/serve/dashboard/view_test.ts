/**
 * The dashboard's view escapes everything it shows: names, notes, image
 * paths and build sources may hold anything a config, a forge or a guest
 * put there, and the page puts the view into its document as HTML.
 */

import assert from "node:assert/strict";
import type { Status } from "../../core/mod.ts";
import type { ImageEntry } from "../../images/mod.ts";
import { age, PAGE, renderView } from "./view.ts";

const NASTY = `<script>alert("x")</script>&amp;'"><img src=x onerror=alert(1)>`;

function status(): Status {
  return {
    machines: [{
      triplet: `octo/app/${NASTY}`,
      runner: `forrest-${NASTY}`,
      state: "starting",
      image: `/srv/forrest/images/${NASTY}.img`,
      since: "2026-11-29T10:00:00.000Z",
      job: null,
      note: `waiting: ${NASTY}`,
      ram: 2 ** 30,
      cpus: 1,
    }, {
      triplet: "octo/app/debian",
      runner: "forrest-debian-1",
      state: "running",
      image: null,
      since: "2026-11-29T09:59:00.000Z",
      job: 42,
      note: null,
      ram: 2 ** 30,
      cpus: 1,
    }],
    jobs: [{
      id: 7,
      triplet: `octo/app/${NASTY}`,
      status: "queued",
      runner: null,
      since: "2026-11-29T10:00:00.000Z",
    }],
    scaleSets: [{
      triplet: "octo/app/debian",
      name: NASTY,
      assigned: 3,
      running: 1,
      capacity: 4,
    }],
    recent: [{
      triplet: "octo/app/debian",
      runner: `forrest-${NASTY}`,
      job: 41,
      image: null,
      pickup: 1.25,
      boot: 14.5,
      started: "2026-11-29T09:58:00.000Z",
      ended: "2026-11-29T09:59:30.000Z",
      killed: NASTY,
    }],
    budget: {
      ram: { used: 2 * 2 ** 30, total: 8 * 2 ** 30 },
      cpus: { used: 2, total: 4 },
    },
  } as Status;
}

const IMAGES: ImageEntry[] = [{
  path: `images/${NASTY}.img`,
  kind: "src",
  sizeOnDisk: 1,
  size: 1,
  modified: new Date("2026-11-28T10:00:00.000Z"),
  derivesFrom: NASTY,
  build: undefined,
}];

/** The view without the whitespace between its tags. */
function flat(html: string): string {
  return html.replace(/>\s+</g, "><").replace(/\s+/g, " ");
}

Deno.test("the dashboard's view escapes every name, note, path and reason", () => {
  const html = flat(renderView({
    status: status(),
    images: IMAGES,
    baseDir: "/srv/forrest",
    now: new Date("2026-11-29T10:00:30.000Z"),
  }));
  assert.doesNotMatch(html, /<script|<img|onerror=alert\(1\)>/);
  // In text and in attributes alike.
  const escaped =
    "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;amp;&#39;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";
  assert.ok(html.includes(`data-runner="forrest-${escaped}"`), html);
  const count = html.split(escaped).length - 1;
  // Machine (triplet, runner in its row, button and text, image, note),
  // queue, scale set, recent (runner, reason), images (path, derives from).
  assert.equal(count, 12);
  // Paths under base_dir are shown relative to it.
  assert.ok(html.includes(`<td>images/${escaped}.img</td>`));
});

Deno.test("the dashboard's view orders machines, counts the queue and shows budgets", () => {
  const html = flat(renderView({
    status: status(),
    images: [],
    baseDir: "/srv/forrest",
    now: new Date("2026-11-29T10:00:30.000Z"),
  }));
  const rows = [...html.matchAll(/<tr class="state-(\w+)"/g)].map((m) => m[1]);
  assert.deepEqual(rows, ["running", "starting"], "furthest along first");
  assert.match(
    html,
    /<td>octo\/app\/debian<\/td><td>2<\/td>/,
    "3 assigned, 1 running",
  );
  assert.match(html, /<meter min="0" max="8589934592" value="2147483648">/);
  assert.match(html, /<td>1\.3 s<\/td><td>14\.5 s<\/td>/);
  assert.match(html, /No images\./);
  assert.equal(age(90_000), "90s");
  assert.equal(age(3 * 86400_000), "3d");
});

Deno.test("the page loads nothing from another host and runs no inline script", () => {
  assert.doesNotMatch(PAGE, /https?:\/\//);
  assert.doesNotMatch(PAGE, /<script(?![^>]*\bsrc=)[^>]*>/);
  assert.match(PAGE, /<script type="module" src="\/dashboard.js"><\/script>/);
});
