/**
 * contrib/grafana-dashboard.json against what `GET /metrics` really
 * renders: every metric and label a panel asks for exists, and every
 * metric family has a panel.
 */

import assert from "node:assert/strict";
import type { Status } from "../core/mod.ts";
import { Metrics } from "./metrics.ts";

const DASHBOARD = new URL(
  "../../contrib/grafana-dashboard.json",
  import.meta.url,
);

/**
 * Metric families with no panel, each with the reason. Empty: every
 * family is charted.
 */
const NOT_CHARTED: Record<string, string> = {};

/** Labels Prometheus adds when it scrapes, and the histogram bucket label. */
const SCRAPE_LABELS = new Set(["instance", "job"]);

interface Target {
  readonly expr?: string;
  readonly legendFormat?: string;
  readonly refId?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}

interface Panel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly gridPos?: { x: number; y: number; w: number; h: number };
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly targets?: Target[];
  readonly panels?: Panel[];
}

interface Variable {
  readonly name: string;
  readonly type: string;
  readonly query?: string | { readonly query?: string };
  readonly definition?: string;
}

interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly schemaVersion: number;
  readonly __inputs: { name: string; type: string; pluginId: string }[];
  readonly __requires: { id: string; type: string }[];
  readonly panels: Panel[];
  readonly templating: { readonly list: Variable[] };
}

const text = await Deno.readTextFile(DASHBOARD);
const dashboard: Dashboard = JSON.parse(text);

/** Every panel, rows' nested panels (collapsed rows keep theirs) included. */
function allPanels(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

const panels = allPanels(dashboard.panels);
const targets = panels.flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p, target: t }))
);

/** The families an expression reads: histogram series name their family. */
function families(expr: string): string[] {
  return [...expr.matchAll(/\bforrest_[a-z_]+/g)].map((m) =>
    m[0].replace(/_(bucket|sum|count)$/, "")
  );
}

/** A status with one of everything, so every family renders samples. */
const status: Status = {
  machines: [{
    triplet: "acme/firmware/build",
    runner: "forrest-build-k3x9q2m7a1c8d0f4",
    state: "running",
    image: "build-1.qcow2",
    since: "2025-01-01T00:00:00.000Z",
    job: 31550197733,
    note: null,
    ram: 8 * 2 ** 30,
    cpus: 4,
  }],
  jobs: [{
    id: 31550197733,
    triplet: "acme/firmware/build",
    status: "in_progress",
    runner: "forrest-build-k3x9q2m7a1c8d0f4",
    since: "2025-01-01T00:00:00.000Z",
  }],
  scaleSets: [{
    triplet: "orgs/acme/build",
    name: "acme-build",
    assigned: 3,
    running: 2,
    capacity: 4,
  }],
  recent: [],
  budget: {
    ram: { used: 8 * 2 ** 30, total: 48 * 2 ** 30 },
    cpus: { used: 4, total: 16 },
  },
};

function rendered(): string {
  const metrics = new Metrics();
  metrics.pickup.observe(12);
  metrics.boot.observe(31);
  metrics.webhook("accepted");
  metrics.guestApiAnswer("stored", 1024);
  return metrics.render(status);
}

/** `# TYPE` lines: family → type. */
function types(exposition: string): Map<string, string> {
  return new Map(
    [...exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [
      m[1]!,
      m[2]!,
    ]),
  );
}

/** Samples: series name → each sample's labels. */
function samples(exposition: string): Map<string, Map<string, string>[]> {
  const out = new Map<string, Map<string, string>[]>();
  for (const line of exposition.split("\n")) {
    const m = line.match(/^([a-z_]+)(?:\{(.*)\})? \S+$/);
    if (!m) continue;
    const labels = new Map(
      [...(m[2] ?? "").matchAll(/([a-z_]+)="((?:[^"\\]|\\.)*)"/g)].map((
        l,
      ) => [l[1]!, l[2]!]),
    );
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), labels]);
  }
  return out;
}

Deno.test("the Grafana dashboard is an importable dashboard", () => {
  assert.equal(dashboard.uid, "forrest");
  assert.equal(dashboard.title, "Forrest");
  assert.ok(dashboard.schemaVersion >= 36, "schemaVersion");
  assert.ok(Array.isArray(dashboard.panels) && dashboard.panels.length > 0);
  assert.ok(
    dashboard.__requires.some((r) =>
      r.type === "datasource" && r.id === "prometheus"
    ),
  );
  for (const type of new Set(panels.map((p) => p.type))) {
    if (type === "row") continue;
    assert.ok(
      dashboard.__requires.some((r) => r.type === "panel" && r.id === type),
      `__requires lists panel type ${type}`,
    );
  }
  // Every ${DS_…} placeholder is an input the import asks for, and back.
  const placeholders = new Set(
    [...text.matchAll(/\$\{(DS_[A-Z_]+)\}/g)].map((m) => m[1]!),
  );
  assert.deepEqual(
    placeholders,
    new Set(dashboard.__inputs.map((i) => i.name)),
  );
  for (const input of dashboard.__inputs) {
    assert.equal(input.type, "datasource");
    assert.equal(input.pluginId, "prometheus");
  }

  const vars = new Map(dashboard.templating.list.map((v) => [v.name, v]));
  const datasource = vars.get("datasource");
  assert.equal(datasource?.type, "datasource");
  assert.equal(datasource?.query, "prometheus");
  const instance = vars.get("instance");
  assert.equal(instance?.type, "query");
  const query = typeof instance?.query === "string"
    ? instance.query
    : instance?.query?.query;
  assert.equal(query, "label_values(forrest_machines, instance)");
});

Deno.test("every Grafana panel has a unique id and a place on the grid", () => {
  const ids = panels.map((p) => p.id);
  assert.ok(ids.every((id) => typeof id === "number"), "every panel has an id");
  assert.equal(new Set(ids).size, ids.length, `duplicate ids in ${ids}`);
  const placed = panels.map((p) => {
    const g = p.gridPos;
    assert.ok(g, `panel ${p.id} has a gridPos`);
    for (const k of ["x", "y", "w", "h"] as const) {
      assert.ok(Number.isInteger(g[k]) && g[k] >= 0, `panel ${p.id} ${k}`);
    }
    assert.ok(g.w > 0 && g.h > 0 && g.x + g.w <= 24, `panel ${p.id} width`);
    return { id: p.id, ...g };
  });
  // No two panels cover the same cell.
  for (const [i, a] of placed.entries()) {
    for (const b of placed.slice(i + 1)) {
      const apart = a.x + a.w <= b.x || b.x + b.w <= a.x ||
        a.y + a.h <= b.y || b.y + b.h <= a.y;
      assert.ok(apart, `panels ${a.id} and ${b.id} overlap`);
    }
  }
});

Deno.test("every Grafana query uses the datasource variable", () => {
  assert.ok(targets.length > 0);
  for (const { panel, target } of targets) {
    const where = `panel ${panel.id} target ${target.refId}`;
    assert.ok(target.expr, `${where} has an expr`);
    assert.equal(target.datasource?.uid, "${datasource}", where);
    assert.equal(panel.datasource?.uid, "${datasource}", where);
    assert.match(target.expr, /instance=~"\$instance"/, where);
  }
});

Deno.test("the Grafana dashboard charts exactly the metrics Forrest renders", () => {
  const exposition = rendered();
  const typed = types(exposition);
  const used = new Set(targets.flatMap(({ target }) => families(target.expr!)));

  for (const name of used) {
    assert.ok(typed.has(name), `dashboard uses ${name}, /metrics has no such`);
  }
  for (const name of typed.keys()) {
    assert.ok(
      used.has(name) || name in NOT_CHARTED,
      `/metrics renders ${name}, no panel charts it`,
    );
  }
  for (const name of Object.keys(NOT_CHARTED)) {
    assert.ok(typed.has(name), `exception for ${name}, not rendered`);
    assert.ok(!used.has(name), `exception for ${name}, yet charted`);
  }
  // Histogram suffixes only on histograms, and only there.
  for (const { target } of targets) {
    for (const m of target.expr!.matchAll(/\bforrest_[a-z_]+/g)) {
      const family = families(m[0])[0]!;
      assert.equal(
        m[0] !== family,
        typed.get(family) === "histogram",
        `${m[0]} in ${target.expr}`,
      );
    }
  }
});

Deno.test("the Grafana dashboard's labels exist in what Forrest renders", () => {
  const series = samples(rendered());
  for (const { panel, target } of targets) {
    const expr = target.expr!;
    const where = `panel ${panel.id} target ${target.refId}: ${expr}`;
    // Label matchers of each selector: the series has a sample with that value.
    for (
      const m of expr.matchAll(/\b(forrest_[a-z_]+)\{([^}]*)\}/g)
    ) {
      const found = series.get(m[1]!);
      assert.ok(found, `${where}: no samples of ${m[1]}`);
      for (const l of m[2]!.matchAll(/([a-z_]+)(=~|!~|!=|=)"([^"]*)"/g)) {
        const [, label, op, value] = l;
        if (SCRAPE_LABELS.has(label!)) continue;
        assert.equal(op, "=", `${where}: only = matchers are checked`);
        assert.ok(
          found.some((s) => s.get(label!) === value),
          `${where}: no ${m[1]}{${label}="${value}"}`,
        );
      }
    }
    // Grouping and legend labels: some series the expression reads has it.
    const known = new Set(SCRAPE_LABELS);
    for (const m of expr.matchAll(/\bforrest_[a-z_]+/g)) {
      for (const s of series.get(m[0]) ?? []) {
        for (const label of s.keys()) known.add(label);
      }
    }
    const grouped = [...expr.matchAll(/\b(?:by|without) \(([^)]*)\)/g)]
      .flatMap((m) => m[1]!.split(",").map((l) => l.trim()));
    const legend = [...(target.legendFormat ?? "").matchAll(/\{\{(\w+)\}\}/g)]
      .map((m) => m[1]!);
    for (const label of [...grouped, ...legend]) {
      assert.ok(known.has(label), `${where}: no series has label ${label}`);
    }
    for (const label of legend) {
      assert.ok(
        grouped.includes(label),
        `${where}: legend {{${label}}} is summed away`,
      );
    }
  }
});
