import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Child, jsonLine } from "./child.js";
import type { Cleanup } from "./cleanup.js";
import { PROJECT_ROOT } from "./paths.js";
import type { BenchToken } from "./token.js";

export interface RunningDaemon {
  readonly child: Child;
  /** From spawn to the "p11kms serving" log line (process start, key store open, reconciliation), ms. */
  readonly startupMs: number;
  readonly grpcAddress: string;
  readonly metricsUrl: string;
}

/**
 * Starts `bin/p11kms serve` exactly as an operator would, on the token given, with its SQLite store next
 * to the token and both listeners on free loopback ports (read back from the "p11kms serving" log line).
 * `cpuProfDir`, when set, runs the daemon under `node --cpu-prof`; the profile is written at its exit.
 */
export async function startDaemon(
  cleanup: Cleanup,
  token: BenchToken,
  opts: { cpuProfDir?: string | undefined; audit?: BenchAudit; startTimeoutMs?: number; sessionCopies?: number; recordCacheMs?: number; deviceThread?: boolean },
): Promise<RunningDaemon> {
  const configPath = join(token.dir, "p11kms.yaml");
  writeFileSync(configPath, daemonConfig(token, opts.audit ?? { enabled: true, fsync: false }, opts), { mode: 0o600 });
  const started = performance.now();
  const nodeFlags = opts.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`] : [];
  const child = Child.start(
    cleanup,
    "p11kms daemon",
    process.execPath,
    [...nodeFlags, join(PROJECT_ROOT, "bin/p11kms"), "serve", "--config", configPath],
    {
      ...process.env,
      // The variables override the file; set them so an operator's environment cannot redirect the bench.
      P11KMS_GRPC_LISTEN: "127.0.0.1:0",
      // Not used by these scenarios, but on its default port it would collide with a daemon already running.
      P11KMS_AWS_LISTEN: "127.0.0.1:0",
      P11KMS_METRICS_LISTEN: "127.0.0.1:0",
      P11KMS_METRICS_ENABLED: "true",
    },
  );
  const ports = await child.waitFor(
    (line) => {
      const j = jsonLine(line);
      return j?.msg === "p11kms serving" ? { grpc: Number(j.grpcPort), metrics: Number(j.metricsPort) } : undefined;
    },
    opts.startTimeoutMs ?? 30_000,
    'the "p11kms serving" log line',
  );
  const startupMs = performance.now() - started;
  if (!Number.isInteger(ports.metrics)) throw child.failure("no metrics listener: the bench checks outcomes there");
  return { child, startupMs, grpcAddress: `127.0.0.1:${ports.grpc}`, metricsUrl: `http://127.0.0.1:${ports.metrics}/metrics` };
}

/** The audit log settings of a bench daemon: on (sync durability, the default) or off, fsync or not. */
export interface BenchAudit {
  readonly enabled: boolean;
  readonly fsync: boolean;
  /** Absent: the default (sync). */
  readonly durability?: "sync" | "async";
}

/** The dev configuration (config/p11kms.dev.yaml) pointed at the bench token. */
function daemonConfig(token: BenchToken, audit: BenchAudit, opts: { sessionCopies?: number; recordCacheMs?: number; deviceThread?: boolean }): string {
  const uri = `pkcs11:token=${token.label}?module-path=${token.modulePath}&pin-source=file:${token.pinFile}`;
  return [
    "# Written by the benchmark (bench/lib/daemon.ts) for one run.",
    "grpc:",
    "  listen: 127.0.0.1:0",
    "  insecure: true",
    "metrics:",
    "  listen: 127.0.0.1:0",
    "  enabled: true",
    "storage:",
    `  sqlitePath: ${JSON.stringify(join(token.dir, "p11kms.db"))}`,
    ...(opts.recordCacheMs === undefined ? [] : [`  recordCacheMs: ${opts.recordCacheMs}`]),
    "keyStores:",
    "  - id: default",
    `    uri: ${JSON.stringify(uri)}`,
    "    maxSessions: 8",
    ...(opts.sessionCopies === undefined ? [] : [`    sessionCopies: ${opts.sessionCopies}`]),
    ...(opts.deviceThread === undefined ? [] : [`    deviceThread: ${opts.deviceThread}`]),
    "audit:",
    `  enabled: ${audit.enabled}`,
    `  file: ${JSON.stringify(join(token.dir, "audit", "audit.jsonl"))}`,
    `  fsync: ${audit.fsync}`,
    ...(audit.durability ? [`  durability: ${audit.durability}`] : []),
    "log:",
    "  level: info",
    "moduleEnvironment:",
    `  SOFTHSM2_CONF: ${JSON.stringify(token.conf)}`,
    "",
  ].join("\n");
}
