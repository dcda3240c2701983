/** Latency summary of one scenario, in milliseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/**
 * Nearest-rank percentiles over every sample (no histogram buckets: a few hundred thousand doubles sort in
 * milliseconds). `samplesMs` is sorted in place.
 */
export function summarize(samplesMs: Float64Array): LatencySummary {
  if (samplesMs.length === 0) throw new Error("no latency samples");
  samplesMs.sort();
  let sum = 0;
  for (const v of samplesMs) sum += v;
  return {
    count: samplesMs.length,
    p50: percentile(samplesMs, 0.5),
    p99: percentile(samplesMs, 0.99),
    max: samplesMs[samplesMs.length - 1]!,
    mean: sum / samplesMs.length,
  };
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
