import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ForeignCpu } from "./cpu.js";
import { grpcFrame } from "./grpc-raw.js";
import { type LoadResult, runH2load } from "./h2load.js";
import { growth, settledOutcomes } from "./prom.js";

/** A unary gRPC call replayed by h2load: the same request bytes every time. */
export interface LoadTarget {
  readonly name: string;
  /** http://127.0.0.1:PORT/package.Service/Method */
  readonly url: string;
  readonly message: Uint8Array;
  /** One real gRPC call with exactly `message`; must throw unless the call succeeds with the expected result. */
  readonly precheck: () => Promise<void>;
  /** The daemon's metrics endpoint and operation name, so every replayed call can be counted as OK. */
  readonly outcomes?: { readonly metricsUrl: string; readonly operation: string };
  /** The server process, so its CPU is not counted as other processes' (see ForeignCpu). */
  readonly serverPid?: number | undefined;
}

export interface LoadSettings {
  readonly clients: number;
  readonly streams: number;
  readonly warmupS: number;
  readonly measureS: number;
  readonly workDir: string;
}

/**
 * A rate-limited run: `totalRps` spread over `clients` connections with `streams` each. Use streams = 1:
 * h2load's --rps releases the due requests of a connection together, so with many streams per connection
 * it measures its own bursts (on the echo server at 4k req/s, p99 2.4 ms with -m 2 but 15 ms with -m 16).
 */
export interface PacedLoad {
  readonly totalRps: number;
  readonly clients: number;
  readonly streams: number;
}

export interface LoadRow {
  readonly name: string;
  readonly inFlight: string;
  readonly result: LoadResult;
  /** How success was established beyond HTTP 200, for the table. */
  readonly verified: string;
  /** Share of the machine used by processes outside the bench during the counted run (0..1). */
  readonly otherCpu: number;
}

/**
 * Precheck → timed warm-up (which also measures the rate) → a counted run of ~measureS seconds at that
 * rate, with per-request latencies → verification. A fixed request count, rather than a fixed duration,
 * lets the daemon's OK counter be compared with h2load's count exactly.
 * `paced`, when given, turns the counted run into a rate-limited run (for latency at part load); the
 * warm-up is then skipped, the target is already warm.
 */
export async function runLoad(target: LoadTarget, s: LoadSettings, paced?: PacedLoad): Promise<LoadRow> {
  const slug = target.name.replace(/[^A-Za-z0-9]+/g, "-").toLowerCase();
  const bodyFile = join(s.workDir, `${slug}.grpc`);
  writeFileSync(bodyFile, grpcFrame(target.message));
  await target.precheck();

  const clients = paced?.clients ?? s.clients;
  const streams = paced?.streams ?? s.streams;
  const common = { url: target.url, bodyFile, clients, streams };
  let rate = paced?.totalRps;
  if (rate === undefined) {
    const warm = await runH2load({ ...common, durationS: s.warmupS });
    // A timed run stops mid-stream: its 2xx count includes streams it then cut, so only failures count here.
    if (warm.failed + warm.errored + warm.timeout > 0 || warm.succeeded !== warm.done) {
      assertClean(target.name, "warm-up", warm, warm.done);
    }
    rate = warm.reqPerSec;
  }

  const requests = Math.max(clients * streams * 10, Math.round(rate * s.measureS));
  const before = target.outcomes && (await settledOutcomes(target.outcomes.metricsUrl, target.outcomes.operation));
  const cpu = ForeignCpu.start([target.serverPid]);
  const result = await runH2load({
    ...common,
    requests,
    logFile: join(s.workDir, `${slug}${paced ? "-paced" : ""}.log`),
    ...(paced ? { rpsPerClient: Math.max(1, Math.round(paced.totalRps / clients)) } : {}),
  });
  const otherCpu = cpu.stop();
  assertClean(target.name, "run", result, requests);

  let verified = "precheck only";
  if (target.outcomes && before) {
    const after = await settledOutcomes(target.outcomes.metricsUrl, target.outcomes.operation);
    verified = assertAllOk(target.name, growth(before, after), requests);
  }
  return { name: target.name, inFlight: `${clients}×${streams}`, result, verified, otherCpu };
}

function assertClean(name: string, phase: string, r: LoadResult, expected: number): void {
  if (r.done !== expected || r.succeeded !== expected || r.status2xx !== expected || r.failed + r.errored + r.timeout > 0) {
    throw new Error(
      `${name} ${phase}: h2load ${r.done} done, ${r.succeeded} succeeded, ${r.status2xx} HTTP 2xx, ` +
        `${r.failed} failed, ${r.errored} errored, ${r.timeout} timeout (expected ${expected})`,
    );
  }
}

/** Every replayed request must appear as exactly one OK outcome, and no other outcome may have grown. */
function assertAllOk(name: string, grew: Map<string, number>, requests: number): string {
  const ok = grew.get("OK") ?? 0;
  const others = [...grew].filter(([outcome]) => outcome !== "OK");
  if (ok !== requests || others.length > 0) {
    const detail = [...grew].map(([o, n]) => `${o}+${n}`).join(", ") || "nothing";
    throw new Error(`${name}: sent ${requests} requests but the daemon's outcome counters grew by ${detail}`);
  }
  return `OK +${ok}`;
}
