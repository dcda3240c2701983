/**
 * Knobs, from the environment so `make bench` needs no arguments. The defaults keep the whole run near
 * 1.5 minutes on 2 cores: 64 calls in flight saturate the daemon without making latency mostly queueing.
 */
export interface BenchSettings {
  readonly clients: number;
  readonly streams: number;
  readonly warmupS: number;
  readonly measureS: number;
  readonly rawMeasureMs: number;
  /** Fraction of the measured Encrypt 4 KB maximum for the latency-at-part-load run. */
  readonly partLoad: number;
  /** When set, the daemon runs under `node --cpu-prof` and writes its profile here. */
  readonly cpuProfDir: string | undefined;
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  return {
    clients: int(env, "BENCH_CLIENTS", 4),
    streams: int(env, "BENCH_STREAMS", 16),
    warmupS: int(env, "BENCH_WARMUP_SECONDS", 2),
    measureS: int(env, "BENCH_SECONDS", 6),
    rawMeasureMs: int(env, "BENCH_RAW_SECONDS", 3) * 1000,
    partLoad: 0.5,
    cpuProfDir: env.BENCH_CPU_PROF || undefined,
  };
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${raw}'`);
  return n;
}
