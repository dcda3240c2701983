import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { promisify } from "node:util";
import { type LatencySummary, summarize } from "./stats.js";

const execFileAsync = promisify(execFile);

/** One h2load run: POST `bodyFile` (a gRPC frame) to `url` from `clients` connections × `streams` streams. */
export interface LoadSpec {
  readonly url: string;
  readonly bodyFile: string;
  readonly clients: number;
  readonly streams: number;
  /** Exactly this many requests (so the daemon's counters can be checked to the unit)... */
  readonly requests?: number;
  /** ...or a timed run (used for warm-up and calibration, where exact counts do not matter). */
  readonly durationS?: number;
  /** Open-loop pacing: requests per second per client (h2load --rps). */
  readonly rpsPerClient?: number;
  /** When set, per-request latencies are written here and summarised. */
  readonly logFile?: string;
}

export interface LoadResult {
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly errored: number;
  readonly timeout: number;
  readonly status2xx: number;
  readonly reqPerSec: number;
  /** From the per-request log: only requests that completed with HTTP 200. */
  readonly latency?: LatencySummary;
}

/**
 * Runs h2load (nghttp2-client) and parses its summary. h2load speaks plain HTTP/2: it sees the HTTP status
 * (always 200 for gRPC) but not grpc-status in the trailers — callers prove success separately.
 */
export async function runH2load(spec: LoadSpec): Promise<LoadResult> {
  const args = [
    "-t", "1", // one native thread: the machine has 2 cores, the other one is the server's
    "-c", String(spec.clients),
    "-m", String(spec.streams),
    "-d", spec.bodyFile,
    "-H", "content-type: application/grpc",
    "-H", "te: trailers",
  ];
  if (spec.requests !== undefined) args.push("-n", String(spec.requests));
  if (spec.durationS !== undefined) args.push("-D", String(spec.durationS));
  if (spec.rpsPerClient !== undefined) args.push(`--rps=${spec.rpsPerClient}`);
  if (spec.logFile !== undefined) {
    rmSync(spec.logFile, { force: true }); // h2load appends to an existing log
    args.push(`--log-file=${spec.logFile}`);
  }
  args.push(spec.url);

  const { stdout } = await execFileAsync("h2load", args, { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 });
  const result = parseSummary(stdout);
  return spec.logFile ? { ...result, latency: summarize(readLatencies(spec.logFile)) } : result;
}

function parseSummary(out: string): LoadResult {
  const finished = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  const reqs =
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(out);
  const codes = /status codes: (\d+) 2xx/.exec(out);
  if (!finished || !reqs || !codes) throw new Error(`cannot parse h2load output:\n${out}`);
  return {
    reqPerSec: Number(finished[1]),
    done: Number(reqs[3]),
    succeeded: Number(reqs[4]),
    failed: Number(reqs[5]),
    errored: Number(reqs[6]),
    timeout: Number(reqs[7]),
    status2xx: Number(codes[1]),
  };
}

/**
 * The --log-file rows are "start µs since epoch \t HTTP status \t µs to end of response". Rows with another
 * status than 200 are dropped: a timed run logs the streams cut at the end of warm-up with status 0.
 */
function readLatencies(file: string): Float64Array {
  const lines = readFileSync(file, "utf8").split("\n");
  const out = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const cols = line.split("\t");
    if (cols[1] === "200") out[n++] = Number(cols[2]) / 1000;
  }
  return out.subarray(0, n);
}
