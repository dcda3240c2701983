/**
 * `make bench`: throughput and latency of p11kms against its two ceilings, in one run —
 *   the device:    AES-GCM 4 KB, ECDSA P-256 and RSA-2048 PSS signing in pkcs11js loops (no gRPC, no
 *                  service layer);
 *   the daemon:    Encrypt 32 B / 4 KB, Decrypt 4 KB, GenerateDataKey, Encrypt 4 KB at half load, and
 *                  Sign/Verify ECDSA P-256, Sign RSA-2048 PSS;
 *   the transport: a grpc-js echo server driven by the same h2load load as the daemon;
 *   the audit log: Encrypt with the audit log off, and with fsync on, against the default (on, no fsync).
 * Every process under test is a child with its own fresh SoftHSM2 token; all are stopped and every temp
 * directory removed at the end, on error and on Ctrl-C. See docs/benchmarks.md.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import type { RawMode, RawResult } from "./children/raw-pkcs11.js";
import { Cleanup } from "./lib/cleanup.js";
import { ForeignCpu } from "./lib/cpu.js";
import { startDaemon } from "./lib/daemon.js";
import { type LoadRow, type LoadSettings, type LoadTarget, type PacedLoad, runLoad } from "./lib/load-scenario.js";
import { PROJECT_ROOT } from "./lib/paths.js";
import { createToken } from "./lib/token.js";
import { type Ratio, type TableRow, formatReport, loadRow, meetsGoal, rawRow } from "./report.js";
import { echoTargets } from "./scenarios/echo.js";
import { kmsTargets } from "./scenarios/kms.js";
import { runRaw } from "./scenarios/raw.js";
import { signTargets } from "./scenarios/sign.js";
import { type BenchSettings, readSettings } from "./settings.js";

type RawResults = Record<RawMode, RawResult & { otherCpu: number }>;

interface DaemonResults {
  readonly encrypt32: LoadRow;
  readonly encrypt4k: LoadRow;
  readonly decrypt4k: LoadRow;
  readonly generateDataKey: LoadRow;
  readonly encrypt4kPaced: LoadRow;
  readonly signEcdsa: LoadRow;
  readonly verifyEcdsa: LoadRow;
  readonly signRsa: LoadRow;
}

/** Encrypt on daemons whose audit log differs from the default (sync durability, no fsync). */
interface AuditResults {
  readonly encrypt32Off: LoadRow;
  readonly encrypt4kOff: LoadRow;
  readonly encrypt4kFsync: LoadRow;
}

interface EchoResults {
  readonly echo32: LoadRow;
  readonly echo4k: LoadRow;
  readonly echo4kPaced: LoadRow;
}

/** Share of the machine other processes may use before a run's figures are flagged as disturbed. */
const BUSY = 0.1;

/** Every device ceiling, in the order of the table. */
const RAW_MODES = [
  "gcm",
  "rng+gcm",
  "keystore",
  "gcm-session",
  "ecdsa-sign-async",
  "ecdsa-sign",
  "ecdsa-sign-session",
  "pss-sign-async",
  "pss-sign",
] as const satisfies readonly RawMode[];

/** Issue 3's throughput aims for Sign over gRPC, in calls per second. */
const SIGN_AIMS = { ecdsa: 10_000, rsa: 2_000 };

const cleanup = new Cleanup();
cleanup.onSignals();

try {
  const settings = readSettings();
  checkTools();
  const workDir = mkdtempSync(join(tmpdir(), "p11kms-bench-"));
  cleanup.removeDir(workDir);
  const load: LoadSettings = { ...settings, workDir };
  const shape = `${settings.clients} connections × ${settings.streams} streams, ${settings.measureS} s a scenario`;
  log(`p11kms bench at ${revision()}: ${shape}`);

  await warnIfBusy();
  const raw = await rawScenarios(settings);
  const kms = await daemonScenarios(settings, load);
  const audit = await auditScenarios(load);
  // The echo runs at the daemon's half-load rate too, so both p99s come from the same h2load pacing.
  const echo = await echoScenarios(load, paced(settings, kms.encrypt4k));

  const rows: TableRow[] = [
    ...[kms.encrypt32, kms.encrypt4k, kms.decrypt4k, kms.generateDataKey, kms.encrypt4kPaced].map(loadRow),
    ...[kms.signEcdsa, kms.verifyEcdsa, kms.signRsa].map(loadRow),
    ...[audit.encrypt32Off, audit.encrypt4kOff, audit.encrypt4kFsync].map(loadRow),
    ...[echo.echo32, echo.echo4k, echo.echo4kPaced].map(loadRow),
    ...RAW_MODES.map((m) => rawRow(raw[m])),
  ];
  const ratios = [...ratiosOf(raw, kms, echo), ...auditRatios(kms, audit)];
  process.stdout.write(`\n${formatReport(rows, ratios)}`);
  const resultsFile = join(PROJECT_ROOT, "dist-bench", "results.json");
  const results = { date: new Date().toISOString(), machine: machine(), settings, rows, ratios };
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  log(`results also written to ${resultsFile}`);
  if (ratios.some((r) => meetsGoal(r) === false)) log("note: at least one goal is NOT MET (see the ratios above)");
  if (rows.some((r) => r.otherCpu > BUSY)) {
    log("WARNING: other processes used > 10% of the machine in some scenarios: rerun when quiet");
  }
} catch (err) {
  if (!cleanup.interrupted) {
    process.stderr.write(`\nbench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exitCode = 1;
} finally {
  await cleanup.runAll();
}

/** The device ceilings, one child process per mode, all on one token of their own. */
async function rawScenarios(s: BenchSettings): Promise<RawResults> {
  const token = createToken(cleanup, "bench-raw");
  const out: Partial<RawResults> = {};
  for (const mode of RAW_MODES) {
    out[mode] = await runRaw(cleanup, token, mode, s.rawMeasureMs);
    report(rawRow(out[mode]));
  }
  return out as RawResults;
}

async function daemonScenarios(s: BenchSettings, load: LoadSettings): Promise<DaemonResults> {
  const token = createToken(cleanup, "bench");
  const daemon = await startDaemon(cleanup, token, { cpuProfDir: s.cpuProfDir });
  log(`daemon pid ${daemon.child.pid} serving on ${daemon.grpcAddress}`);
  const t = await kmsTargets(daemon);
  const signing = await signTargets(daemon);
  try {
    const encrypt32 = reportLoad(await runLoad(t.encrypt32, load));
    const encrypt4k = reportLoad(await runLoad(t.encrypt4k, load));
    const decrypt4k = reportLoad(await runLoad(t.decrypt4k, load));
    const generateDataKey = reportLoad(await runLoad(t.generateDataKey, load));
    const pace = paced(s, encrypt4k);
    const encrypt4kPaced = reportLoad(await runLoad(pacedTarget(t.encrypt4k, pace), load, pace));
    const signEcdsa = reportLoad(await runLoad(signing.signEcdsa, load));
    const verifyEcdsa = reportLoad(await runLoad(signing.verifyEcdsa, load));
    const signRsa = reportLoad(await runLoad(signing.signRsa, load));
    return { encrypt32, encrypt4k, decrypt4k, generateDataKey, encrypt4kPaced, signEcdsa, verifyEcdsa, signRsa };
  } finally {
    t.close();
    signing.close();
    await daemon.child.stop();
    if (s.cpuProfDir) log(`daemon CPU profile written to ${s.cpuProfDir}`);
  }
}

/** The audit log's cost: the same Encrypt scenarios on a daemon without audit log, and on one that fsyncs. */
async function auditScenarios(load: LoadSettings): Promise<AuditResults> {
  const run = async (audit: { enabled: boolean; fsync: boolean }, label: string, sizes: ("encrypt32" | "encrypt4k")[]) => {
    const token = createToken(cleanup, `bench-audit-${audit.enabled ? "fsync" : "off"}`);
    const daemon = await startDaemon(cleanup, token, { cpuProfDir: undefined, audit });
    const t = await kmsTargets(daemon);
    try {
      const rows: LoadRow[] = [];
      for (const size of sizes) rows.push(reportLoad(await runLoad({ ...t[size], name: `${t[size].name} (${label})` }, load)));
      return rows;
    } finally {
      t.close();
      await daemon.child.stop();
    }
  };
  const [encrypt32Off, encrypt4kOff] = await run({ enabled: false, fsync: false }, "audit log off", ["encrypt32", "encrypt4k"]);
  const [encrypt4kFsync] = await run({ enabled: true, fsync: true }, "audit log with fsync", ["encrypt4k"]);
  return { encrypt32Off: encrypt32Off!, encrypt4kOff: encrypt4kOff!, encrypt4kFsync: encrypt4kFsync! };
}

function auditRatios(kms: DaemonResults, audit: AuditResults): Ratio[] {
  const rps = (r: LoadRow) => r.result.reqPerSec;
  return [
    { name: "Encrypt 32 B audit log on / off", value: rps(kms.encrypt32) / rps(audit.encrypt32Off), unit: "ratio" },
    { name: "Encrypt 4 KB audit log on / off", value: rps(kms.encrypt4k) / rps(audit.encrypt4kOff), unit: "ratio" },
    { name: "Encrypt 4 KB audit log with fsync / off", value: rps(audit.encrypt4kFsync) / rps(audit.encrypt4kOff), unit: "ratio" },
  ];
}

async function echoScenarios(load: LoadSettings, pace: PacedLoad): Promise<EchoResults> {
  const echo = await echoTargets(cleanup);
  try {
    const echo32 = reportLoad(await runLoad(echo.echo32, load));
    const echo4k = reportLoad(await runLoad(echo.echo4k, load));
    const echo4kPaced = reportLoad(await runLoad(pacedTarget(echo.echo4k, pace), load, pace));
    return { echo32, echo4k, echo4kPaced };
  } finally {
    await echo.stop();
  }
}

/** Half of the measured Encrypt 4 KB maximum, one stream per connection (see PacedLoad). */
function paced(s: BenchSettings, max: LoadRow): PacedLoad {
  return { totalRps: Math.round(max.result.reqPerSec * s.partLoad), clients: 8, streams: 1 };
}

function pacedTarget(target: LoadTarget, pace: PacedLoad): LoadTarget {
  return { ...target, name: `${target.name} paced at ${pace.totalRps} req/s` };
}

function ratiosOf(raw: RawResults, kms: DaemonResults, echo: EchoResults): Ratio[] {
  const rps = (r: LoadRow) => r.result.reqPerSec;
  const p99 = (r: LoadRow) => r.result.latency?.p99 ?? Number.NaN;
  const ratio = (name: string, a: number, b: number, goal?: Ratio["goal"]): Ratio => ({
    name,
    value: a / b,
    unit: "ratio",
    ...(goal ? { goal } : {}),
  });
  const rate = kms.encrypt4kPaced.result.reqPerSec;
  return [
    ratio("Encrypt 4 KB / gRPC echo 4 KB", rps(kms.encrypt4k), rps(echo.echo4k), { min: 0.8 }),
    ratio("Encrypt 32 B / gRPC echo 32 B", rps(kms.encrypt32), rps(echo.echo32)),
    ratio("Decrypt 4 KB / gRPC echo 4 KB", rps(kms.decrypt4k), rps(echo.echo4k)),
    ratio("GenerateDataKey / gRPC echo 32 B", rps(kms.generateDataKey), rps(echo.echo32)),
    ratio("Encrypt 4 KB / pkcs11js AES-GCM 4 KB", rps(kms.encrypt4k), raw.gcm.opsPerSec),
    ratio("Encrypt 4 KB / pkcs11js RNG+AES-GCM 4 KB", rps(kms.encrypt4k), raw["rng+gcm"].opsPerSec),
    ratio("Pkcs11KeyStore / pkcs11js RNG+AES-GCM 4 KB", raw.keystore.opsPerSec, raw["rng+gcm"].opsPerSec),
    ratio("AES-GCM session-object key / token key", raw["gcm-session"].opsPerSec, raw.gcm.opsPerSec),
    // The daemon signs P-256 synchronously on a session copy of the key (the sync loop, on a token object,
    // is the closer ceiling) and RSA with C_SignAsync on its session pool (the async loop).
    ratio("Sign ECDSA P-256 / pkcs11js ECDSA sign (async)", rps(kms.signEcdsa), raw["ecdsa-sign-async"].opsPerSec),
    ratio("Sign ECDSA P-256 / pkcs11js ECDSA sign (sync)", rps(kms.signEcdsa), raw["ecdsa-sign"].opsPerSec),
    ratio("Sign ECDSA P-256 / pkcs11js ECDSA sign (session copy)", rps(kms.signEcdsa), raw["ecdsa-sign-session"].opsPerSec),
    ratio("ECDSA sign: session-object key / token key", raw["ecdsa-sign-session"].opsPerSec, raw["ecdsa-sign"].opsPerSec),
    ratio("Sign RSA-2048 PSS / pkcs11js PSS sign (async)", rps(kms.signRsa), raw["pss-sign-async"].opsPerSec),
    ratio("Sign RSA-2048 PSS / pkcs11js PSS sign (sync)", rps(kms.signRsa), raw["pss-sign"].opsPerSec),
    { name: "Sign ECDSA P-256 over gRPC", value: rps(kms.signEcdsa), unit: "ops/s", goal: { min: SIGN_AIMS.ecdsa } },
    { name: "Sign RSA-2048 PSS over gRPC", value: rps(kms.signRsa), unit: "ops/s", goal: { min: SIGN_AIMS.rsa } },
    {
      name: `Encrypt 4 KB p99 at ${Math.round(rate)} req/s (50% of max)`,
      value: p99(kms.encrypt4kPaced),
      unit: "ms",
      goal: { max: 5 },
    },
    { name: `gRPC echo 4 KB p99 at the same rate`, value: p99(echo.echo4kPaced), unit: "ms" },
  ];
}

/** The figures assume an otherwise idle machine: say so up front when it is not. */
async function warnIfBusy(): Promise<void> {
  const cpu = ForeignCpu.start();
  await new Promise((r) => setTimeout(r, 1000));
  const other = cpu.stop();
  if (other > BUSY) {
    log(`WARNING: other processes use ${Math.round(other * 100)}% of the machine: expect low, noisy figures`);
  }
}

function checkTools(): void {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("h2load not found: install Debian's nghttp2-client (make deps does)");
  }
}

function machine(): Record<string, unknown> {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    revision: revision(),
  };
}

/** The commit measured ("-dirty": with uncommitted changes), so a result can be tied to the code. */
function revision(): string {
  try {
    return execFileSync("git", ["describe", "--always", "--dirty"], { cwd: PROJECT_ROOT, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

function reportLoad(r: LoadRow): LoadRow {
  report(loadRow(r));
  return r;
}

function report(row: TableRow): void {
  log(
    `  ${row.scenario}: ${Math.round(row.opsPerSec)} ops/s, p50 ${row.p50.toFixed(3)} ms, p99 ${row.p99.toFixed(3)} ms ` +
      `(${row.verified}; other processes ${Math.round(row.otherCpu * 100)}% CPU)`,
  );
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}
