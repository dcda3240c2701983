/**
 * `make bench`, scale part: a token with 10,000 keys against one with 10, in the same run —
 *   start-up:  spawn to "p11kms serving" (module load, token scan, reconciliation of every record);
 *   latency:   Encrypt 4 KB on one key, paced (h2load, 8 connections × 1 stream) and at full load;
 *              Encrypt 4 KB over many different keys one call at a time (grpc-js), so the per-key path
 *              (record lookup, session-copy admission, token objects) is exercised, not only one hot key;
 *   memory:    the daemon's RSS when serving and after the load.
 * The 10,000-key token and its database are made once under var/bench-10k (minutes: SoftHSM2 writes a file
 * per object) and reused by later runs; delete the directory to rebuild it. See docs/benchmarks.md.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { call, connect } from "../../src/cli/client.js";
import { CreateKeyRequest, DecryptRequest, EncryptRequest } from "../../src/gen/p11kms/v1/kms.js";
import { Cleanup } from "../lib/cleanup.js";
import { type RunningDaemon, startDaemon } from "../lib/daemon.js";
import { type LoadRow, type LoadSettings, runLoad } from "../lib/load-scenario.js";
import { PROJECT_ROOT, SOFTHSM_MODULE } from "../lib/paths.js";
import { type LatencySummary, summarize } from "../lib/stats.js";
import type { BenchToken } from "../lib/token.js";
import { kmsTargets } from "../scenarios/kms.js";
import { readSettings } from "../settings.js";

const KEYS = Number(process.env.BENCH_SCALE_KEYS ?? 10_000);
const SMALL = 10;
const SCALE_DIR = join(PROJECT_ROOT, "var", `bench-${KEYS >= 1000 ? `${KEYS / 1000}k` : KEYS}`);
/** Requests per second of the paced run: well under either daemon's maximum, so latency is not queueing. */
const PACED_RPS = Number(process.env.BENCH_SCALE_RPS ?? 2000);
/** Distinct keys of the one-at-a-time run (each used 3 times, round robin). */
const SPREAD = 1000;
const TIMEOUT_MS = 30_000;

interface Side {
  readonly keys: number;
  readonly startupMs: number;
  readonly rssServingMiB: number;
  readonly rssAfterMiB: number;
  readonly full: LoadRow;
  readonly paced: LoadRow;
  readonly spread: LatencySummary & { readonly keys: number; readonly firstMs: number };
}

const cleanup = new Cleanup();
cleanup.onSignals();

try {
  const settings = readSettings();
  const workDir = mkdtempSync(join(tmpdir(), "p11kms-bench-scale-"));
  cleanup.removeDir(workDir);
  const load: LoadSettings = { ...settings, workDir };
  log(`p11kms scale bench: ${KEYS} keys (${SCALE_DIR}) against ${SMALL}`);

  const small = tokenIn(mkdtempSync(join(tmpdir(), "p11kms-bench-small-")), "bench-small");
  cleanup.removeDir(small.dir);
  const smallKeys = await makeKeys(small, SMALL);
  const { token: large, keyIds: largeKeys } = await scaleToken();

  const a = await measure(small, smallKeys, load);
  const b = await measure(large, largeKeys, load);
  const ratio = (x: number, y: number) => (x / y).toFixed(2);
  const rows = [
    ["start-up to serving (ms)", a.startupMs.toFixed(0), b.startupMs.toFixed(0), "≤ 3000 (10k)", b.startupMs <= 3000 ? "met" : "NOT MET"],
    // A daemon that logs "serving" and then stalls would hide start-up work here: the first answer shows it.
    ["first Encrypt after serving (ms)", f(a.spread.firstMs), f(b.spread.firstMs), "", ""],
    ["Encrypt 4 KB paced p50 (ms)", f(a.paced.result.latency!.p50), f(b.paced.result.latency!.p50), "≤ 1.2×", verdict(b.paced.result.latency!.p50 / a.paced.result.latency!.p50)],
    ["Encrypt 4 KB paced p99 (ms)", f(a.paced.result.latency!.p99), f(b.paced.result.latency!.p99), "", ratio(b.paced.result.latency!.p99, a.paced.result.latency!.p99)],
    ["Encrypt 4 KB full load (ops/s)", a.full.result.reqPerSec.toFixed(0), b.full.result.reqPerSec.toFixed(0), "", ratio(b.full.result.reqPerSec, a.full.result.reqPerSec)],
    ["Encrypt 4 KB full load p99 (ms)", f(a.full.result.latency!.p99), f(b.full.result.latency!.p99), "", ratio(b.full.result.latency!.p99, a.full.result.latency!.p99)],
    [`Encrypt 4 KB one at a time over N keys, p50 (ms)`, `${f(a.spread.p50)} (N=${a.spread.keys})`, `${f(b.spread.p50)} (N=${b.spread.keys})`, "≤ 1.2×", verdict(b.spread.p50 / a.spread.p50)],
    [`  same, p99 (ms)`, f(a.spread.p99), f(b.spread.p99), "", ratio(b.spread.p99, a.spread.p99)],
    ["daemon RSS serving (MiB)", a.rssServingMiB.toFixed(0), b.rssServingMiB.toFixed(0), "", ""],
    ["daemon RSS after the load (MiB)", a.rssAfterMiB.toFixed(0), b.rssAfterMiB.toFixed(0), "", ""],
  ];
  const header = ["scale", `${SMALL} keys`, `${KEYS} keys`, "goal", "10k / 10"];
  process.stdout.write(`\n${table([header, ...rows])}\n`);
  const other = Math.max(a.full.otherCpu, a.paced.otherCpu, b.full.otherCpu, b.paced.otherCpu);
  if (other > 0.1) log(`WARNING: other processes used up to ${Math.round(other * 100)}% of the machine: rerun when quiet`);
  const file = join(PROJECT_ROOT, "dist-bench", "results-scale.json");
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), keys: KEYS, small: a, large: b }, null, 2)}\n`);
  log(`results also written to ${file}`);
} catch (err) {
  if (!cleanup.interrupted) process.stderr.write(`\nscale bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup.runAll();
}

async function measure(token: BenchToken, keyIds: string[], load: LoadSettings): Promise<Side> {
  const daemon = await startDaemon(cleanup, token, { startTimeoutMs: 600_000 });
  log(`${keyIds.length} keys: serving after ${daemon.startupMs.toFixed(0)} ms`);
  try {
    const rssServingMiB = rssMiB(daemon);
    const spread = await oneAtATime(daemon, keyIds.slice(0, SPREAD));
    log(`  one at a time over ${spread.keys} keys: first call ${f(spread.firstMs)} ms, p50 ${f(spread.p50)} ms, p99 ${f(spread.p99)} ms`);
    const t = await kmsTargets(daemon, keyIds[0]);
    try {
      const full = await runLoad(t.encrypt4k, load);
      log(`  full load: ${full.result.reqPerSec.toFixed(0)} ops/s, p99 ${f(full.result.latency!.p99)} ms`);
      const paced = await runLoad({ ...t.encrypt4k, name: `Encrypt 4 KB paced ${keyIds.length} keys` }, load, {
        totalRps: PACED_RPS,
        clients: 8,
        streams: 1,
      });
      log(`  paced at ${PACED_RPS}/s: p50 ${f(paced.result.latency!.p50)} ms, p99 ${f(paced.result.latency!.p99)} ms`);
      return { keys: keyIds.length, startupMs: daemon.startupMs, rssServingMiB, rssAfterMiB: rssMiB(daemon), full, paced, spread };
    } finally {
      t.close();
    }
  } finally {
    await daemon.child.stop();
  }
}

/**
 * Encrypt 4 KB on each key in turn (3 rounds), one call in flight, right after start-up (the first call's
 * latency is reported on its own); checks one result decrypts back.
 */
async function oneAtATime(daemon: RunningDaemon, keyIds: string[]): Promise<LatencySummary & { keys: number; firstMs: number }> {
  const client = connect(daemon.grpcAddress);
  try {
    const plaintext = Buffer.alloc(4096, 7);
    const samples = new Float64Array(keyIds.length * 3);
    let i = 0;
    let last: Uint8Array | undefined;
    for (let round = 0; round < 3; round++) {
      for (const keyId of keyIds) {
        const t0 = performance.now();
        last = (await call(client, client.encrypt, EncryptRequest.fromPartial({ keyId, plaintext }), TIMEOUT_MS)).ciphertextBlob;
        samples[i++] = performance.now() - t0;
      }
    }
    const back = await call(client, client.decrypt, DecryptRequest.fromPartial({ ciphertextBlob: Buffer.from(last!) }), TIMEOUT_MS);
    if (!Buffer.from(back.plaintext).equals(plaintext)) throw new Error("one-at-a-time Encrypt did not decrypt back");
    const firstMs = samples[0]!; // before summarize sorts them
    return { ...summarize(samples), keys: keyIds.length, firstMs };
  } finally {
    client.close();
  }
}

/** The cached 10k-key token, made on first use; a directory without a complete keys.json is rebuilt. */
async function scaleToken(): Promise<{ token: BenchToken; keyIds: string[] }> {
  const keysFile = join(SCALE_DIR, "keys.json");
  if (existsSync(keysFile)) {
    const keyIds = JSON.parse(readFileSync(keysFile, "utf8")) as string[];
    if (keyIds.length === KEYS) {
      log(`reusing ${KEYS} keys in ${SCALE_DIR}`);
      return { token: tokenIn(SCALE_DIR, "bench-scale"), keyIds };
    }
  }
  rmSync(SCALE_DIR, { recursive: true, force: true });
  const token = tokenIn(SCALE_DIR, "bench-scale");
  log(`creating ${KEYS} keys in ${SCALE_DIR} (once; a few minutes)`);
  const keyIds = await makeKeys(token, KEYS);
  writeFileSync(keysFile, `${JSON.stringify(keyIds)}\n`);
  return { token, keyIds };
}

/** A token under `dir` (kept if it exists), made by the script `make run` uses. */
function tokenIn(dir: string, label: string): BenchToken {
  const conf = execFileSync(join(PROJECT_ROOT, "softhsm/init-token.sh"), [dir, label], { encoding: "utf8" }).trim();
  return { dir, conf, label, pinFile: join(dir, "pin"), modulePath: SOFTHSM_MODULE };
}

/** Creates `count` AES keys through the daemon's CreateKey, 8 at a time. */
async function makeKeys(token: BenchToken, count: number): Promise<string[]> {
  const daemon = await startDaemon(cleanup, token, { startTimeoutMs: 600_000 });
  const client = connect(daemon.grpcAddress);
  const ids: string[] = [];
  try {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        const res = await call(client, client.createKey, CreateKeyRequest.fromPartial({ description: "scale bench" }), TIMEOUT_MS);
        ids.push(res.keyMetadata!.keyId);
        if (ids.length % 1000 === 0) log(`  ${ids.length} keys`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return ids;
  } finally {
    client.close();
    await daemon.child.stop();
  }
}

function rssMiB(daemon: RunningDaemon): number {
  const status = readFileSync(`/proc/${daemon.child.pid}/status`, "utf8");
  const kib = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? Number.NaN);
  return kib / 1024;
}

function verdict(r: number): string {
  return `${r.toFixed(2)} ${r <= 1.2 ? "met" : "NOT MET"}`;
}

function f(ms: number): string {
  return ms < 1 ? ms.toFixed(3) : ms.toFixed(2);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => `| ${r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join(" | ")} |`;
  return [line(rows[0]!), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}
