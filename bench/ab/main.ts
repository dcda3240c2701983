/**
 * A/B of hot-path settings on one machine in one run (not part of `make bench`; run it with
 * `node dist-bench/bench/ab/main.js` after `npx tsc -p tsconfig.bench.json`): the daemon with session copies
 * and the record cache off (`sessionCopies: 0`, `recordCacheMs: 0`), with the device thread off
 * (`deviceThread: false`), and with the defaults, alternated `BENCH_AB_ROUNDS` times (default 3) on one token
 * (`BENCH_AB_VARIANTS=thread` runs only the last two). Per variant: Encrypt 4 KB and Sign ECDSA P-256 at full
 * load (ops/s), the daemon's CPU time per call (user + system, over a fixed count of requests), which moves
 * much less than throughput when other work shares the machine, and Encrypt 4 KB paced at
 * `BENCH_AB_PACED_RPS` (default 1500) in 8 connections × 1 stream: its p50/p99. See docs/benchmarks.md.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cleanup } from "../lib/cleanup.js";
import { startDaemon } from "../lib/daemon.js";
import { grpcFrame } from "../lib/grpc-raw.js";
import { runH2load } from "../lib/h2load.js";
import { type LoadSettings, type LoadTarget, runLoad } from "../lib/load-scenario.js";
import { createToken } from "../lib/token.js";
import { kmsTargets } from "../scenarios/kms.js";
import { signTargets } from "../scenarios/sign.js";
import { readSettings } from "../settings.js";

const ROUNDS = Number(process.env.BENCH_AB_ROUNDS ?? 3);
const CPU_REQUESTS = 20_000;
const ALL_VARIANTS: readonly { name: string; sessionCopies?: number; recordCacheMs?: number; deviceThread?: boolean }[] = [
  { name: "caches off", sessionCopies: 0, recordCacheMs: 0 },
  { name: "device thread off", deviceThread: false },
  { name: "defaults" },
];
const VARIANTS = process.env.BENCH_AB_VARIANTS === "thread" ? ALL_VARIANTS.slice(1) : ALL_VARIANTS;
const PACED_RPS = Number(process.env.BENCH_AB_PACED_RPS ?? 1500);

const cleanup = new Cleanup();
cleanup.onSignals();
try {
  const settings = readSettings();
  const workDir = mkdtempSync(join(tmpdir(), "p11kms-bench-ab-"));
  cleanup.removeDir(workDir);
  const load: LoadSettings = { ...settings, workDir };
  const token = createToken(cleanup, "bench-ab");
  const rows: string[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const v of VARIANTS) {
      const daemon = await startDaemon(cleanup, token, v);
      const t = await kmsTargets(daemon);
      const s = await signTargets(daemon);
      try {
        for (const target of [t.encrypt4k, s.signEcdsa]) {
          const row = await runLoad(target, load);
          const cpuUs = await cpuPerCall(daemon.child.pid!, target, workDir, settings.clients, settings.streams);
          const line = `| ${round} | ${v.name} | ${target.name} | ${Math.round(row.result.reqPerSec)} | ${cpuUs.toFixed(1)} | | ${Math.round(row.otherCpu * 100)}% |`;
          rows.push(line);
          process.stderr.write(`${line}\n`);
        }
        const pace = { totalRps: PACED_RPS, clients: 8, streams: 1 };
        const paced = await runLoad({ ...t.encrypt4k, name: `${t.encrypt4k.name} paced at ${PACED_RPS}/s` }, load, pace);
        const lat = paced.result.latency;
        const line = `| ${round} | ${v.name} | ${t.encrypt4k.name} paced at ${PACED_RPS}/s | ${Math.round(paced.result.reqPerSec)} | | ${lat ? `${lat.p50.toFixed(2)} / ${lat.p99.toFixed(2)}` : "-"} | ${Math.round(paced.otherCpu * 100)}% |`;
        rows.push(line);
        process.stderr.write(`${line}\n`);
      } finally {
        t.close();
        s.close();
        await daemon.child.stop();
      }
    }
  }
  process.stdout.write(`\n| round | variant | scenario | ops/s | daemon CPU µs/call | paced p50 / p99 ms | other CPU |\n|---|---|---|---:|---:|---:|---:|\n${rows.join("\n")}\n`);
} catch (err) {
  if (!cleanup.interrupted) process.stderr.write(`\nA/B bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup.runAll();
}

/** The daemon's user + system CPU over a fixed number of requests, per request, in µs. */
async function cpuPerCall(pid: number, target: LoadTarget, workDir: string, clients: number, streams: number): Promise<number> {
  const bodyFile = join(workDir, "ab.grpc");
  writeFileSync(bodyFile, grpcFrame(target.message));
  const before = cpuTicks(pid);
  const r = await runH2load({ url: target.url, bodyFile, clients, streams, requests: CPU_REQUESTS });
  if (r.succeeded !== CPU_REQUESTS) throw new Error(`${target.name}: ${r.succeeded} of ${CPU_REQUESTS} succeeded`);
  return ((cpuTicks(pid) - before) * 10_000) / CPU_REQUESTS; // 100 ticks per second
}

function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
}
