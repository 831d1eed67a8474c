/**
 * The numbers behind `GET /metrics`, in Prometheus' text format: counters
 * and histograms Forrest keeps itself, and gauges read from the core's
 * status when scraped.
 */

import {
  type MachineState,
  type Status,
  TRACKED_JOB_STATUSES,
} from "../core/mod.ts";
import type { GuestApiOutcome } from "../guest_api/mod.ts";

/** Bucket bounds in seconds: pickup and boot take seconds to minutes. */
const BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800];

class Histogram {
  readonly counts = BUCKETS.map(() => 0);
  sum = 0;
  count = 0;

  observe(value: number): void {
    this.sum += value;
    this.count++;
    BUCKETS.forEach((bound, i) => {
      if (value <= bound) this.counts[i]!++;
    });
  }

  lines(name: string): string[] {
    return [
      ...BUCKETS.map((bound, i) =>
        `${name}_bucket{le="${bound}"} ${this.counts[i]}`
      ),
      `${name}_bucket{le="+Inf"} ${this.count}`,
      `${name}_sum ${this.sum}`,
      `${name}_count ${this.count}`,
    ];
  }
}

export type WebhookOutcome =
  | "accepted"
  | "duplicate"
  | "ping"
  | "ignored"
  | "unconfigured"
  | "unauthorized"
  | "invalid"
  | "too_large";

const MACHINE_STATES = [
  "requested",
  "registering",
  "registered",
  "starting",
  "warm",
  "waiting",
  "running",
  "stopping",
] as const satisfies readonly MachineState[];

/** A counter's lines, one per outcome, in a stable order. */
function byOutcome(name: string, counts: ReadonlyMap<string, number>) {
  return [...counts].sort().map(([outcome, n]) =>
    `${name}{outcome="${outcome}"} ${n}`
  );
}

export class Metrics {
  readonly webhooks = new Map<WebhookOutcome, number>();
  readonly guestApi = new Map<GuestApiOutcome, number>();
  uploadedBytes = 0;
  readonly pickup = new Histogram();
  readonly boot = new Histogram();

  webhook(outcome: WebhookOutcome): void {
    this.webhooks.set(outcome, (this.webhooks.get(outcome) ?? 0) + 1);
  }

  guestApiAnswer(outcome: GuestApiOutcome, bytes: number): void {
    this.guestApi.set(outcome, (this.guestApi.get(outcome) ?? 0) + 1);
    this.uploadedBytes += bytes;
  }

  /** The exposition text, with the core's current status as gauges. */
  render(status: Status): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string) =>
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    metric("forrest_machines", "gauge", "Machines by state.");
    for (const state of MACHINE_STATES) {
      const n = status.machines.filter((m) => m.state === state).length;
      lines.push(`forrest_machines{state="${state}"} ${n}`);
    }
    metric("forrest_jobs", "gauge", "Tracked jobs by status.");
    for (const s of TRACKED_JOB_STATUSES) {
      const n = status.jobs.filter((j) => j.status === s).length;
      lines.push(`forrest_jobs{status="${s}"} ${n}`);
    }
    if (status.scaleSets.length > 0) {
      metric(
        "forrest_scale_set_jobs",
        "gauge",
        "Jobs assigned to each scale set (waiting or running), and running.",
      );
      for (const s of status.scaleSets) {
        const labels = `scale_set="${escapeLabel(s.name)}",machine="${
          escapeLabel(s.triplet)
        }"`;
        lines.push(
          `forrest_scale_set_jobs{${labels},state="assigned"} ${s.assigned}`,
          `forrest_scale_set_jobs{${labels},state="running"} ${s.running}`,
        );
      }
      metric(
        "forrest_scale_set_capacity",
        "gauge",
        "The most machines of each scale set's type the budget takes now.",
      );
      for (const s of status.scaleSets) {
        lines.push(
          `forrest_scale_set_capacity{scale_set="${
            escapeLabel(s.name)
          }",machine="${escapeLabel(s.triplet)}"} ${s.capacity}`,
        );
      }
    }
    metric(
      "forrest_webhooks_total",
      "counter",
      "Webhook deliveries by outcome.",
    );
    lines.push(...byOutcome("forrest_webhooks_total", this.webhooks));
    metric(
      "forrest_guest_api_requests_total",
      "counter",
      "Guest API requests (artifact uploads) by outcome.",
    );
    lines.push(
      ...byOutcome("forrest_guest_api_requests_total", this.guestApi),
    );
    metric(
      "forrest_artifact_bytes_total",
      "counter",
      "Bytes stored in artifact stores.",
    );
    lines.push(`forrest_artifact_bytes_total ${this.uploadedBytes}`);
    metric("forrest_budget_ram_bytes", "gauge", "RAM budget: used and total.");
    lines.push(
      `forrest_budget_ram_bytes{kind="used"} ${status.budget.ram.used}`,
      `forrest_budget_ram_bytes{kind="total"} ${status.budget.ram.total}`,
    );
    metric("forrest_budget_cpus", "gauge", "vCPU budget: used and total.");
    lines.push(`forrest_budget_cpus{kind="used"} ${status.budget.cpus.used}`);
    if (status.budget.cpus.total !== null) {
      lines.push(
        `forrest_budget_cpus{kind="total"} ${status.budget.cpus.total}`,
      );
    }
    metric(
      "forrest_job_pickup_seconds",
      "histogram",
      "From a job queued to one of our runners taking it.",
    );
    lines.push(...this.pickup.lines("forrest_job_pickup_seconds"));
    metric(
      "forrest_vm_boot_seconds",
      "histogram",
      "From a VM started to its runner online.",
    );
    lines.push(...this.boot.lines("forrest_vm_boot_seconds"));
    return lines.join("\n") + "\n";
  }
}

/** A Prometheus label value: backslash, quote and newline escaped. */
function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(
    /\n/g,
    "\\n",
  );
}
