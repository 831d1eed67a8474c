/**
 * The dashboard's body as HTML, rendered here from the status (and the
 * images under base_dir) and sent to the page at every change: the page
 * needs no build step and no renderer of its own. Every value goes
 * through hono/html's `html`, which escapes it; names, notes and image
 * paths can hold anything a config, a forge or a guest put there.
 */

import { html } from "hono/html";
import { relative } from "node:path";
import type { Status } from "../../core/mod.ts";
import { describeBuild, type ImageEntry } from "../../images/mod.ts";

type Html = ReturnType<typeof html>;

/** The order machines are shown in: furthest along first. */
const STATE_ORDER = [
  "running",
  "waiting",
  "starting",
  "warm",
  "registered",
  "registering",
  "requested",
  "stopping",
];

export interface ViewInput {
  readonly status: Status;
  /** Undefined while not listed yet. */
  readonly images: readonly ImageEntry[] | undefined;
  readonly baseDir: string;
  readonly now: Date;
}

/** "42s", "3m", "5h", "2d": how long ago, or for how long. */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function seconds(value: number | null): string {
  return value === null ? "" : `${value.toFixed(1)} s`;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

export function renderView(input: ViewInput): string {
  const { status, now } = input;
  const since = (iso: string | null) =>
    iso === null ? "" : age(now.getTime() - Date.parse(iso));
  const image = (path: string | null) =>
    path === null
      ? ""
      : path.startsWith(`${input.baseDir}/`)
      ? relative(input.baseDir, path)
      : path;
  const { ram, cpus } = status.budget;
  const machines = status.machines.toSorted((a, b) =>
    STATE_ORDER.indexOf(a.state) - STATE_ORDER.indexOf(b.state) ||
    a.triplet.localeCompare(b.triplet)
  );
  const queued = new Map<string, number>();
  for (const job of status.jobs) {
    if (job.status === "queued") {
      queued.set(job.triplet, (queued.get(job.triplet) ?? 0) + 1);
    }
  }
  for (const set of status.scaleSets) {
    const waiting = Math.max(0, set.assigned - set.running);
    if (waiting > 0) queued.set(set.triplet, waiting);
  }
  const body: Html = html`<section id="budgets">
  <h2>Budgets</h2>
  <p><label>RAM <meter min="0" max="${ram.total}" value="${ram.used}"></meter>
  <span class="figure">${gib(ram.used)} of ${gib(ram.total)}</span></label></p>
  ${
    cpus.total === null
      ? html`<p>CPUs <span class="figure">${cpus.used} in use (no CPU budget: host.cpus is not set)</span></p>`
      : html`<p><label>CPUs <meter min="0" max="${cpus.total}" value="${cpus.used}"></meter>
  <span class="figure">${cpus.used} of ${cpus.total}</span></label></p>`
  }
</section>
<section id="machines">
  <h2>Machines <span class="count">${machines.length}</span></h2>
  ${
    machines.length === 0 ? html`<p class="none">No machines.</p>` : html`
      <table>
        <thead>
          <tr>
            <th>Machine</th>
            <th>Runner</th>
            <th>State</th>
            <th>For</th>
            <th>Job</th>
            <th>Image</th>
            <th>Why</th>
          </tr>
        </thead>
        <tbody>${machines.map((m) =>
          html`
            <tr class="state-${m.state}" data-runner="${m.runner}">
              <td>${m.triplet}</td>
              <td><button type="button" class="log" data-runner="${m
                .runner}" title="boot log">${m.runner}</button></td>
              <td class="state">${m.state}</td>
              <td>${since(m.since)}</td>
              <td>${m.job === null ? "" : String(m.job)}</td>
              <td>${image(m.image)}</td>
              <td>${m.note ?? ""}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `
  }
</section>
<section id="queue">
  <h2>Waiting for a machine</h2>
  ${
    queued.size === 0 ? html`<p class="none">No job waits.</p>` : html`
      <table>
        <thead>
          <tr>
            <th>Machine</th>
            <th>Jobs</th>
          </tr>
        </thead>
        <tbody>${[...queued].map(([triplet, count]) =>
          html`
            <tr>
              <td>${triplet}</td>
              <td>${count}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `
  }
</section>
<section id="recent">
  <h2>Recent machines</h2>
  ${
    status.recent.length === 0 ? html`<p class="none">None yet.</p>` : html`
      <table>
        <thead>
          <tr>
            <th>Machine</th>
            <th>Runner</th>
            <th>Job</th>
            <th>Pickup</th>
            <th>Boot</th>
            <th>Ended</th>
            <th>Image</th>
            <th>Stopped because</th>
          </tr>
        </thead>
        <tbody>${status.recent.map((r) =>
          html`
            <tr>
              <td>${r.triplet}</td>
              <td>${r.runner}</td>
              <td>${r.job === null ? "" : String(r.job)}</td>
              <td>${seconds(r.pickup)}</td>
              <td>${seconds(r.boot)}</td>
              <td>${since(r.ended)} ago</td>
              <td>${image(r.image)}</td>
              <td>${r.killed ?? ""}</td>
            </tr>
          `
        )}</tbody>
      </table>
    `
  }
</section>
${
    status.scaleSets.length === 0 ? "" : html`
      <section id="scale-sets">
        <h2>Scale sets</h2>
        <table>
          <thead>
            <tr>
              <th>Scale set</th>
              <th>Machine</th>
              <th>Assigned</th>
              <th>Running</th>
              <th>Capacity</th>
            </tr>
          </thead>
          <tbody>${status.scaleSets.map((s) =>
            html`
              <tr>
                <td>${s.name}</td>
                <td>${s.triplet}</td>
                <td>${s.assigned}</td>
                <td>${s.running}</td>
                <td>${s.capacity}</td>
              </tr>
            `
          )}</tbody>
        </table>
      </section>
    `
  }
<section id="images">
  <h2>Images</h2>
  ${
    input.images === undefined
      ? html`<p class="none">Listing…</p>`
      : input.images.length === 0
      ? html`<p class="none">No images.</p>`
      : html`
        <table>
          <thead>
            <tr>
              <th>Image</th>
              <th>Kind</th>
              <th>Age</th>
              <th>Derives from</th>
              <th>Built from</th>
            </tr>
          </thead>
          <tbody>${input.images.map((i) =>
            html`
              <tr>
                <td>${i.path}</td>
                <td>${i.kind}</td>
                <td>${age(now.getTime() - i.modified.getTime())}</td>
                <td>${i.derivesFrom ?? ""}</td>
                <td>${i.build === undefined ? "" : describeBuild(i.build)}</td>
              </tr>
            `
          )}</tbody>
        </table>
      `
  }
</section>`;
  return String(body);
}

/** The page itself: the view arrives over /dashboard/events. */
export const PAGE = String(html`
  <!doctype html>
  <html lang="en">
    <head>
      <meta charset="utf-8">
      <meta name="viewport" content="width=device-width, initial-scale=1">
      <title>Forrest</title>
      <link rel="stylesheet" href="/dashboard.css">
      <script type="module" src="/dashboard.js"></script>
    </head>
    <body>
      <header><h1>Forrest</h1><span id="live" class="live">connecting…</span></header>
      <main id="view">
        <p class="none">Loading…</p>
      </main>
      <dialog id="log">
        <form
          method="dialog"><h2 id="log-title"></h2><pre id="log-text"></pre><button>Close</button></form>
      </dialog>
    </body>
  </html>
`);

/**
 * The page's script: the view replaced at every event, a machine's boot
 * log on a click. Served as a file so that the page's Content Security
 * Policy can refuse every inline script.
 */
export const SCRIPT = `const view = document.getElementById("view");
const live = document.getElementById("live");
const events = new EventSource("/dashboard/events");
events.addEventListener("view", (event) => {
  view.innerHTML = event.data;
  live.textContent = "live · " + new Date().toLocaleTimeString();
  live.className = "live on";
});
events.addEventListener("error", () => {
  live.textContent = "reconnecting…";
  live.className = "live off";
});
view.addEventListener("click", async (event) => {
  const button = event.target.closest("button.log");
  if (!button) return;
  const runner = button.dataset.runner;
  const dialog = document.getElementById("log");
  document.getElementById("log-title").textContent = runner;
  const text = document.getElementById("log-text");
  text.textContent = "…";
  dialog.showModal();
  const answer = await fetch("/machines/" + encodeURIComponent(runner) + "/log");
  text.textContent = answer.ok ? await answer.text() : "No boot log: " + answer.status;
  text.scrollTop = text.scrollHeight;
});
`;

export const STYLE =
  `:root { font-family: system-ui, sans-serif; color: #1b1f24; background: #f6f8fa; }
body { margin: 0 auto; max-width: 1280px; padding: 0 1rem 2rem; }
header { display: flex; align-items: baseline; gap: 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.05rem; margin: 1.2rem 0 .4rem; }
.live { font-size: .85rem; color: #57606a; } .live.on::before { content: "● "; color: #1a7f37; }
.live.off::before { content: "● "; color: #cf222e; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: .9rem; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #d0d7de; overflow-wrap: anywhere; }
th { background: #eaeef2; font-weight: 600; }
td.state { font-weight: 600; }
tr.state-running td.state { color: #1a7f37; } tr.state-starting td.state, tr.state-waiting td.state { color: #9a6700; }
tr.state-warm td.state { color: #0969da; } tr.state-stopping td.state { color: #57606a; }
meter { width: 20rem; height: 1.1rem; vertical-align: middle; }
.figure { margin-left: .5rem; color: #57606a; } .none { color: #57606a; } .count { color: #57606a; font-weight: normal; }
button.log { font: inherit; border: 0; background: none; color: #0969da; cursor: pointer; padding: 0; text-align: left; }
dialog { width: min(1100px, 95vw); } pre { max-height: 70vh; overflow: auto; background: #0d1117; color: #e6edf3; padding: .6rem; font-size: .8rem; white-space: pre-wrap; }
`;
