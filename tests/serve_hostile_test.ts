/**
 * Hostile input, property-based: at least 10,000 generated deliveries to
 * a running `forrest serve` — random bytes, truncated JSON, valid JSON of
 * the wrong shape, huge label arrays, names with `../`, NUL and unicode,
 * valid signatures over malicious bodies, bad signatures. Every answer is
 * one of the documented codes for its kind of input, Forrest stays up,
 * and the only jobs it tracks afterwards are the well-formed ones of its
 * configured repository.
 */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import fc from "fast-check";
import { workflowJobPayload } from "./github/mod.ts";
import { LABELS, OWNER, REPO, WEBHOOK_SECRET, withServe } from "./serve.ts";

const RUNS = Number(Deno.env.get("HOSTILE_RUNS") ?? 10_000);
const GOOD_IDS_FROM = 900_000_000;

interface Delivery {
  readonly kind: string;
  readonly event: string;
  readonly body: Uint8Array<ArrayBuffer>;
  /** undefined: no header at all. */
  readonly signature: string | undefined;
  /** The answers this kind of input may get. */
  readonly allowed: readonly number[];
  /** A well-formed job of ours: it must be tracked afterwards. */
  readonly goodId?: number;
}

const encoder = new TextEncoder();
const sign = (body: Uint8Array) =>
  `sha256=${createHmac("sha256", WEBHOOK_SECRET).update(body).digest("hex")}`;

function job(id: number, fields: Record<string, unknown> = {}) {
  return workflowJobPayload("queued", {
    id,
    run_id: 1,
    status: "queued",
    labels: ["self-hosted", "x-not-ours"],
    runner_id: null,
    runner_name: null,
    ...fields,
  }, { id: 1, owner: OWNER, ownerId: 2, name: REPO, installationId: 3 });
}

function signed(
  kind: string,
  value: unknown,
  allowed: readonly number[],
  event = "workflow_job",
): Delivery {
  const body = typeof value === "string"
    ? encoder.encode(value)
    : value instanceof Uint8Array
    ? new Uint8Array(value)
    : encoder.encode(JSON.stringify(value));
  return { kind, event, body, signature: sign(body), allowed };
}

/** Strings meant to hurt: traversal, NUL, unicode, control characters. */
const nasty = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 200 }),
  fc.constantFrom(
    "../../etc/passwd",
    "..",
    "a\0b",
    "\u202e\u0000",
    "forrest-debian-../../x",
    "🦀".repeat(60),
    "<JITCONFIG>",
    "$(reboot)",
    "a".repeat(101),
  ),
);
const id = fc.integer({ min: 1, max: GOOD_IDS_FROM - 1 });

const deliveries: fc.Arbitrary<Delivery> = fc.oneof(
  {
    weight: 60,
    arbitrary: fc.uint8Array({ maxLength: 4096 }).map((bytes) =>
      signed("random bytes", bytes, [400])
    ),
  },
  {
    weight: 60,
    arbitrary: fc.tuple(id, fc.double({ min: 0, max: 0.999 })).map((
      [n, at],
    ) => {
      const text = JSON.stringify(job(n));
      return signed(
        "truncated JSON",
        text.slice(0, Math.floor(at * text.length)),
        [400],
      );
    }),
  },
  {
    weight: 60,
    arbitrary: fc.jsonValue().map((value) =>
      signed("JSON of another shape", value, [400])
    ),
  },
  {
    weight: 60,
    arbitrary: fc.tuple(
      id,
      fc.constantFrom("workflow_job", "repository", "id", "labels", "status"),
      fc.jsonValue(),
    ).map(([n, field, value]) => {
      const payload = job(n) as Record<string, unknown>;
      const target = ["id", "labels", "status"].includes(field)
        ? payload.workflow_job as Record<string, unknown>
        : payload;
      target[field] = value;
      // Some replacements happen to keep a valid shape (a new id, say).
      return signed("a field replaced", payload, [400, 202, 204]);
    }),
  },
  {
    weight: 40,
    arbitrary: fc.tuple(id, fc.array(nasty, { maxLength: 3000 })).map((
      [n, labels],
    ) =>
      signed(
        "labels: many and nasty",
        job(n, { labels }),
        labels.length > 1000 || labels.some((l) => l.length > 1000)
          ? [400]
          : [202],
      )
    ),
  },
  {
    weight: 40,
    arbitrary: fc.tuple(id, nasty, nasty, nasty).map(
      ([n, owner, name, runner]) => {
        const payload = job(n, {
          runner_name: runner,
          status: "in_progress",
        }) as {
          repository: { name: string; owner: { login: string } };
        };
        payload.repository.name = name;
        payload.repository.owner.login = owner;
        // The schema counts code points, not UTF-16 units.
        const bad = [owner, name].some((s) =>
          s.length < 1 || Array.from(s).length > 100
        );
        return signed(
          "names: traversal, NUL, unicode",
          payload,
          bad ? [400] : [202, 204],
        );
      },
    ),
  },
  {
    weight: 40,
    arbitrary: fc.tuple(
      id,
      fc.constantFrom(undefined, "", "sha256=", "sha1=0"),
      fc.string({ maxLength: 64 }),
    )
      .map(([n, header, junk]): Delivery => {
        const body = encoder.encode(JSON.stringify(job(n)));
        return {
          kind: "bad signature",
          event: "workflow_job",
          body,
          signature: header === undefined ? undefined : header + junk,
          allowed: [401],
        };
      }),
  },
  {
    weight: 20,
    arbitrary: fc.tuple(id, nasty).map(([n, other]): Delivery => {
      const body = encoder.encode(JSON.stringify(job(n)));
      const over = encoder.encode(JSON.stringify(job(n, { labels: [other] })));
      return {
        kind: "signature over another body",
        event: "workflow_job",
        body,
        signature: sign(over),
        allowed: [401],
      };
    }),
  },
  {
    weight: 20,
    arbitrary: fc.tuple(nasty, fc.jsonValue()).map(([event, value]) =>
      signed(
        "another event",
        value,
        [200, 204, 400],
        event.replace(/[^\x21-\x7e]/g, "") || "x",
      )
    ),
  },
  {
    // Rare, like real jobs among the noise: well-formed and ours.
    weight: 1,
    arbitrary: fc.integer({
      min: GOOD_IDS_FROM,
      max: GOOD_IDS_FROM + 1_000_000,
    })
      .map((n) => ({
        ...signed("a job of ours", job(n, { labels: LABELS }), [202, 204]),
        goodId: n,
      })),
  },
);

Deno.test("serve: 10,000 hostile deliveries get documented answers and change nothing", async () => {
  await withServe({
    image: "/nonexistent/debian.img",
    janitorInterval: "10m",
  }, async (s) => {
    const client = Deno.createHttpClient({
      proxy: { transport: "unix", path: s.socket },
    });
    const good = new Set<number>();
    const kinds = new Map<string, number>();
    try {
      await fc.assert(
        fc.asyncProperty(deliveries, async (d) => {
          const headers: Record<string, string> = {
            "Content-Type": "application/json",
            "X-GitHub-Event": d.event,
            "X-GitHub-Delivery": crypto.randomUUID(),
          };
          if (d.signature !== undefined) {
            headers["X-Hub-Signature-256"] = d.signature;
          }
          const response = await fetch("http://forrest/webhook", {
            method: "POST",
            body: d.body,
            headers,
            client,
          });
          await response.body?.cancel();
          kinds.set(d.kind, (kinds.get(d.kind) ?? 0) + 1);
          if (d.goodId !== undefined && response.status === 202) {
            good.add(d.goodId);
          }
          assert.ok(
            d.allowed.includes(response.status),
            `${d.kind}: ${response.status}, expected ${d.allowed.join(" or ")}`,
          );
        }),
        {
          numRuns: RUNS,
          // The default report prints whole bodies (megabytes of labels).
          reporter: (out) => {
            if (!out.failed) return;
            const d = out.counterexample?.[0];
            const body = d ? new TextDecoder().decode(d.body) : "";
            throw new Error(
              `after ${out.numRuns} deliveries (seed ${out.seed}): ${
                String(out.errorInstance).slice(0, 300)
              }; body starts ${JSON.stringify(body.slice(0, 300))}`,
            );
          },
        },
      );
    } finally {
      client.close();
    }
    console.log(
      `hostile deliveries: ${
        [...kinds].map(([k, n]) => `${k} ${n}`).join(", ")
      }`,
    );
    for (const kind of kinds.keys()) assert.ok(kinds.get(kind)! > 0, kind);
    assert.ok(good.size > 0, "some well-formed jobs were among them");
    const status = await s.status();
    assert.deepEqual(
      status.jobs.map((j) => j.id).sort(),
      [...good].sort(),
      "only the well-formed jobs of ours are tracked",
    );
    // A body over the limit, once: 413, and Forrest is still up.
    const big = await s.double.sendWebhook("workflow_job", null, {
      body: new Uint8Array(5 * 1024 * 1024).fill(0x20),
    });
    assert.equal(big.status, 413);
    assert.equal((await s.fetch("/status")).status, 200);
  });
});
