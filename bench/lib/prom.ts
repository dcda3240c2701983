/** Outcome counts of one gRPC operation, from p11kms_requests_total{api="grpc",operation=...,outcome=...}. */
export type Outcomes = ReadonlyMap<string, number>;

const SAMPLE_RE = /^p11kms_requests_total\{([^}]*)\}\s+(\S+)/;
const LABEL_RE = /(\w+)="((?:[^"\\]|\\.)*)"/g;

export async function scrapeOutcomes(metricsUrl: string, operation: string): Promise<Outcomes> {
  const res = await fetch(metricsUrl);
  if (!res.ok) throw new Error(`GET ${metricsUrl}: HTTP ${res.status}`);
  const outcomes = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    const m = SAMPLE_RE.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(LABEL_RE)].map((l) => [l[1]!, l[2]!]));
    if (labels.api === "grpc" && labels.operation === operation && labels.outcome !== undefined) {
      outcomes.set(labels.outcome, Number(m[2]));
    }
  }
  return outcomes;
}

/**
 * Waits until the counters stop moving: a timed h2load run ends by resetting streams the daemon may still
 * be finishing, and those must land before the "before" snapshot of the next, counted run.
 */
export async function settledOutcomes(metricsUrl: string, operation: string): Promise<Outcomes> {
  let prev = await scrapeOutcomes(metricsUrl, operation);
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const next = await scrapeOutcomes(metricsUrl, operation);
    if (sameCounts(prev, next)) return next;
    prev = next;
  }
  throw new Error(`${operation} counters still moving after 5 s`);
}

/** Per-outcome growth between two snapshots (outcomes that did not grow are left out). */
export function growth(before: Outcomes, after: Outcomes): Map<string, number> {
  const out = new Map<string, number>();
  for (const [outcome, v] of after) {
    const d = v - (before.get(outcome) ?? 0);
    if (d !== 0) out.set(outcome, d);
  }
  return out;
}

function sameCounts(a: Outcomes, b: Outcomes): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}
