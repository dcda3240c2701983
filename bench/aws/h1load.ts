import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { promisify } from "node:util";
import { summarize, type LatencySummary } from "../lib/stats.js";

const run = promisify(execFile);

export interface H1Result {
  readonly reqPerSec: number;
  readonly done: number;
  readonly status2xx: number;
  readonly latency: LatencySummary;
}

/**
 * h2load over HTTP/1.1 (--h1): `clients` keep-alive connections, one request in flight on each (no
 * pipelining: node:http answers pipelined requests strictly in order, which would measure head-of-line
 * blocking rather than the server).
 */
export async function h1load(spec: {
  url: string;
  bodyFile: string;
  headers: Record<string, string>;
  clients: number;
  durationS?: number;
  requests?: number;
  logFile: string;
}): Promise<H1Result> {
  // -N: a connection silent for 10 s is closed (its request counted as failed) instead of h2load waiting for
  // it indefinitely — moto_server now and then leaves one hanging at the end of a timed run.
  const args = ["--h1", "-t", "1", "-c", String(spec.clients), "-m", "1", "-N", "10", "-d", spec.bodyFile];
  for (const [k, v] of Object.entries(spec.headers)) args.push("-H", `${k}: ${v}`);
  if (spec.durationS !== undefined) args.push("-D", String(spec.durationS));
  if (spec.requests !== undefined) args.push("-n", String(spec.requests));
  rmSync(spec.logFile, { force: true });
  args.push(`--log-file=${spec.logFile}`, spec.url);
  // A timed run that has not ended 30 s after its duration is stuck (see -N): fail it rather than wait minutes.
  const timeout = spec.durationS !== undefined ? (spec.durationS + 30) * 1000 : 180_000;
  const { stdout } = await run("h2load", args, { timeout, maxBuffer: 64 * 1024 * 1024 }).catch((e: { stdout?: string; stderr?: string; message: string; code?: unknown; signal?: unknown }) => {
    const how = `exit code ${String(e.code)}, signal ${String(e.signal)}`;
    throw new Error(`h2load failed (${how}): ${e.message.split("\n")[0]}\n${(e.stdout ?? "").slice(-1500)}${(e.stderr ?? "").slice(-1500)}`);
  });
  const rps = /finished in [\d.]+s, ([\d.]+) req\/s/.exec(stdout);
  const done = /requests: \d+ total, \d+ started, (\d+) done/.exec(stdout);
  const codes = /status codes: (\d+) 2xx/.exec(stdout);
  if (!rps || !done || !codes) throw new Error(`cannot parse h2load output:\n${stdout}`);
  // --log-file lines: start time (µs since epoch), HTTP status, duration (µs).
  const samples = readFileSync(spec.logFile, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => l.split(/\s+/))
    .filter((f) => f[1] === "200")
    .map((f) => Number(f[2]) / 1000);
  return { reqPerSec: Number(rps[1]), done: Number(done[1]), status2xx: Number(codes[1]), latency: summarize(Float64Array.from(samples)) };
}
