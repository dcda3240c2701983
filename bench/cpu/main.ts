/**
 * CPU per call of the daemon against the gRPC echo server, one run (not part of `make bench`; run it with
 * `node dist-bench/bench/cpu/main.js` after `npx tsc -p tsconfig.bench.json`). Throughput moves with whatever
 * else the machine does; the server's own CPU time per call (user + system over a fixed number of requests
 * at full load) moves much less, so this is the figure to compare two builds of the hot path with. The
 * main thread's share is shown apart: it is the event loop, the daemon's bottleneck. With
 * BENCH_CPU_PROF=<dir> the daemon runs under `node --cpu-prof` and leaves its profile there.
 *
 * The machine column is every core's busy time per call — server, h2load, the kernel's loopback work, and
 * anything else running, so read it from a quiet machine only — and the last column what that allows with
 * every core busy: a rate above it cannot be reached by spreading the same work over more threads or
 * processes, only by doing less per call.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Cleanup } from "../lib/cleanup.js";
import { machineJiffies } from "../lib/cpu.js";
import { startDaemon } from "../lib/daemon.js";
import { grpcFrame } from "../lib/grpc-raw.js";
import { runH2load } from "../lib/h2load.js";
import type { LoadTarget } from "../lib/load-scenario.js";
import { createToken } from "../lib/token.js";
import { echoTargets } from "../scenarios/echo.js";
import { kmsTargets } from "../scenarios/kms.js";
import { signTargets } from "../scenarios/sign.js";
import { readSettings } from "../settings.js";

const REQUESTS = Number(process.env.BENCH_CPU_REQUESTS ?? 20_000);
const ONLY = process.env.BENCH_CPU_ONLY?.split(",");
const CORES = availableParallelism();

const cleanup = new Cleanup();
cleanup.onSignals();
try {
  const settings = readSettings();
  const workDir = mkdtempSync(join(tmpdir(), "p11kms-bench-cpu-"));
  cleanup.removeDir(workDir);
  const rows: string[] = [];
  const measure = async (target: LoadTarget, pid: number): Promise<void> => {
    if (ONLY && !ONLY.some((o) => target.name.includes(o))) return;
    await target.precheck();
    const bodyFile = join(workDir, "cpu.grpc");
    writeFileSync(bodyFile, grpcFrame(target.message));
    // Warm-up: JIT, session copies, record cache.
    await runH2load({ url: target.url, bodyFile, clients: settings.clients, streams: settings.streams, requests: Math.min(5000, REQUESTS) });
    const before = cpuTicks(pid);
    const beforeMain = cpuTicks(pid, pid);
    const beforeMachine = machineJiffies().busy;
    const t0 = performance.now();
    const r = await runH2load({ url: target.url, bodyFile, clients: settings.clients, streams: settings.streams, requests: REQUESTS });
    const seconds = (performance.now() - t0) / 1000;
    if (r.succeeded !== REQUESTS) throw new Error(`${target.name}: ${r.succeeded} of ${REQUESTS} succeeded`);
    const cpuUs = ((cpuTicks(pid) - before) * 10_000) / REQUESTS;
    const mainUs = ((cpuTicks(pid, pid) - beforeMain) * 10_000) / REQUESTS;
    const machineUs = ((machineJiffies().busy - beforeMachine) * 10_000) / REQUESTS;
    const bound = (CORES * 1e6) / machineUs;
    const line = `| ${target.name} | ${Math.round(REQUESTS / seconds)} | ${cpuUs.toFixed(1)} | ${mainUs.toFixed(1)} | ${machineUs.toFixed(1)} | ${Math.round(bound)} |`;
    rows.push(line);
    process.stderr.write(`${line}\n`);
  };

  const echo = await echoTargets(cleanup);
  const echoPid = echo.echo4k.serverPid!;
  await measure(echo.echo32, echoPid);
  await measure(echo.echo4k, echoPid);
  await echo.stop();

  const token = createToken(cleanup, "bench-cpu");
  const daemon = await startDaemon(cleanup, token, { cpuProfDir: settings.cpuProfDir, audit: auditSetting(process.env.BENCH_CPU_AUDIT) });
  const t = await kmsTargets(daemon);
  const s = await signTargets(daemon);
  try {
    for (const target of [t.encrypt32, t.encrypt4k, t.decrypt4k, s.signEcdsa]) await measure(target, daemon.child.pid!);
    const metrics = await (await fetch(daemon.metricsUrl)).text();
    const calls = /^p11kms_device_thread_calls_total (\d+)/m.exec(metrics)?.[1];
    const messages = /^p11kms_device_thread_messages_total (\d+)/m.exec(metrics)?.[1];
    if (calls && messages && Number(messages) > 0) rows.push(`\ndevice thread: ${calls} calls in ${messages} messages (${(Number(calls) / Number(messages)).toFixed(1)} per message)`);
  } finally {
    t.close();
    s.close();
    await daemon.child.stop();
  }
  process.stdout.write(
    `\n| scenario | ops/s | server CPU µs/call | main thread µs/call | machine CPU µs/call | all ${CORES} cores busy: ops/s |\n|---|---:|---:|---:|---:|---:|\n${rows.join("\n")}\n`,
  );
} catch (err) {
  if (!cleanup.interrupted) process.stderr.write(`\nCPU bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup.runAll();
}

/** BENCH_CPU_AUDIT: unset (the default audit log), "off", or "async" (async durability). */
function auditSetting(v: string | undefined): { enabled: boolean; fsync: boolean; durability?: "async" } {
  if (v === "off") return { enabled: false, fsync: false };
  return v === "async" ? { enabled: true, fsync: false, durability: "async" } : { enabled: true, fsync: false };
}

/** User + system CPU ticks of a process, or of one of its threads (the main thread's id is the pid). */
function cpuTicks(pid: number, tid?: number): number {
  const fields = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
}
