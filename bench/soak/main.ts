/**
 * `make soak`: a bounded soak of the daemon on a fresh SoftHSM2 token, loopback only. It measures the
 * maximum rate of a mixed workload (gRPC and the AWS JSON facade: Encrypt, Decrypt, GenerateDataKey, Sign,
 * Verify, now and then CreateKey) for a few seconds, then holds ~70 % of it for SOAK_SECONDS, printing a
 * line every 10 s (throughput, errors, latency, daemon RSS) and at the end the RSS slope — memory that
 * keeps growing under a steady load is a leak. Not run by CI. See docs/operations.md, "Soak".
 *
 * Environment: SOAK_SECONDS (default 600), SOAK_LOAD (fraction of the measured maximum, default 0.7),
 * SOAK_CALIBRATE_SECONDS (default 10), SOAK_CONCURRENCY (calls in flight at most, default 32),
 * SOAK_REPORT_SECONDS (default 10), SOAK_CREATE_KEYS (default 0; 1 adds CreateKey to the mix, 1 % of the calls).
 *
 * CreateKey is left out by default: each key it makes stays in memory (its token object in SoftHSM2, its
 * handles and parsed policy in the daemon: ~12 KB), so with it RSS grows with the key count for the whole
 * run and hides a leak; without it the workload is a steady state, where any growth is one.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { credentials as grpcCredentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { createAccessKeyFile } from "../../src/cli/access-key-file.js";
import {
  CreateKeyRequest,
  DecryptRequest,
  EncryptRequest,
  GenerateDataKeyRequest,
  KeyManagementServiceClient,
  SignRequest,
  VerifyRequest,
} from "../../src/gen/p11kms/v1/kms.js";
import { presign } from "../aws/presign.js";
import { Child, jsonLine } from "../lib/child.js";
import { Cleanup } from "../lib/cleanup.js";
import { PROJECT_ROOT } from "../lib/paths.js";
import { createToken } from "../lib/token.js";

const SECONDS = num("SOAK_SECONDS", 600);
const LOAD = num("SOAK_LOAD", 0.7);
const CALIBRATE = num("SOAK_CALIBRATE_SECONDS", 10);
const CONCURRENCY = num("SOAK_CONCURRENCY", 32);
const REPORT_EVERY = num("SOAK_REPORT_SECONDS", 10);
const CREATE_KEYS = process.env.SOAK_CREATE_KEYS === "1";
const REGION = "us-east-1";

function num(name: string, dflt: number): number {
  const v = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} must be a positive number`);
  return v;
}

type Op = () => Promise<void>;

const cleanup = new Cleanup();

async function main(): Promise<void> {
  const token = createToken(cleanup, "soak");
  const daemon = await startSoakDaemon(token.dir, token.conf, token.label, token.modulePath, token.pinFile);
  const grpc = new KeyManagementServiceClient(daemon.grpcAddress, grpcCredentials.createInsecure());
  cleanup.add("close gRPC client", () => grpc.close());
  const call = <Req, Res>(method: (r: Req, md: Metadata, o: object, cb: (e: ServiceError | null, r: Res) => void) => unknown, req: Req) =>
    new Promise<Res>((ok, ko) => method.call(grpc, req, new Metadata(), { deadline: Date.now() + 30_000 }, (e, r) => (e ? ko(e) : ok(r))));
  const aws = async (target: string, body: object): Promise<Record<string, unknown>> => {
    const text = JSON.stringify(body);
    const url = new URL(daemon.awsEndpoint);
    const headers = await presign({ url, target, body: text, credentials: daemon.accessKey, region: REGION });
    const res = await fetch(daemon.awsEndpoint, { method: "POST", headers, body: text, signal: AbortSignal.timeout(30_000) });
    const json = (await res.json()) as Record<string, unknown>;
    if (res.status !== 200) throw Object.assign(new Error(String(json.message ?? json.__type)), { kind: String(json.__type) });
    return json;
  };

  // Keys and one ciphertext of each API, made once; CreateKey in the mix adds a key now and then.
  const aesKey = (await call(grpc.createKey, CreateKeyRequest.fromPartial({ description: "soak" }))).keyMetadata!.keyId;
  const ecKey = (await call(grpc.createKey, CreateKeyRequest.fromPartial({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" }))).keyMetadata!.keyId;
  const plaintext = Buffer.alloc(1024, 7);
  const blob = (await call(grpc.encrypt, EncryptRequest.fromPartial({ keyId: aesKey, plaintext }))).ciphertextBlob;
  const awsBlob = String((await aws("Encrypt", { KeyId: aesKey, Plaintext: plaintext.toString("base64") })).CiphertextBlob);
  const message = Buffer.from("soak message");
  const signature = (await call(grpc.sign, SignRequest.fromPartial({ keyId: ecKey, message, signingAlgorithm: "ECDSA_SHA_256" }))).signature;

  let keysCreated = 0;
  const mix: [weight: number, name: string, op: Op][] = [
    [25, "grpc Encrypt", async () => void (await call(grpc.encrypt, EncryptRequest.fromPartial({ keyId: aesKey, plaintext })))],
    [20, "grpc Decrypt", async () => void (await call(grpc.decrypt, DecryptRequest.fromPartial({ ciphertextBlob: blob })))],
    [10, "grpc GenerateDataKey", async () => void (await call(grpc.generateDataKey, GenerateDataKeyRequest.fromPartial({ keyId: aesKey, keySpec: "AES_256" })))],
    [8, "grpc Sign", async () => void (await call(grpc.sign, SignRequest.fromPartial({ keyId: ecKey, message, signingAlgorithm: "ECDSA_SHA_256" })))],
    [5, "grpc Verify", async () => {
      const r = await call(grpc.verify, VerifyRequest.fromPartial({ keyId: ecKey, message, signature, signingAlgorithm: "ECDSA_SHA_256" }));
      if (!r.signatureValid) throw Object.assign(new Error("signature did not verify"), { kind: "WrongResult" });
    }],
    [12, "aws Encrypt", async () => void (await aws("Encrypt", { KeyId: aesKey, Plaintext: plaintext.toString("base64") }))],
    [12, "aws Decrypt", async () => void (await aws("Decrypt", { CiphertextBlob: awsBlob }))],
    [7, "aws GenerateDataKey", async () => void (await aws("GenerateDataKey", { KeyId: aesKey, KeySpec: "AES_256" }))],
    [CREATE_KEYS ? 1 : 0, "grpc CreateKey", async () => {
      await call(grpc.createKey, CreateKeyRequest.fromPartial({ description: "soak extra" }));
      keysCreated++;
    }],
  ];
  const total = mix.reduce((s, m) => s + m[0], 0);
  const pick = (): [string, Op] => {
    let r = Math.random() * total;
    for (const [w, name, op] of mix) if ((r -= w) < 0) return [name, op];
    return [mix[0]![1], mix[0]![2]];
  };

  const stats = new Window();
  const run = async (): Promise<void> => {
    const [name, op] = pick();
    const t0 = performance.now();
    try {
      await op();
      stats.ok(performance.now() - t0);
    } catch (err) {
      stats.error(`${name}: ${(err as { kind?: string; details?: string; message?: string }).kind ?? (err as ServiceError).details ?? String(err)}`);
    }
  };

  // 1. The maximum: CONCURRENCY callers back to back.
  process.stdout.write(`calibrating: ${CALIBRATE} s with ${CONCURRENCY} concurrent callers (mixed gRPC + AWS)\n`);
  const calEnd = Date.now() + CALIBRATE * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < calEnd) await run();
  }));
  const cal = stats.take();
  const maxRate = cal.count / CALIBRATE;
  if (cal.errors.size > 0) throw new Error(`errors during calibration: ${JSON.stringify(Object.fromEntries(cal.errors))}`);
  const target = maxRate * LOAD;
  process.stdout.write(`max ${maxRate.toFixed(0)} ops/s; soaking at ${(LOAD * 100).toFixed(0)} % = ${target.toFixed(0)} ops/s for ${SECONDS} s\n`);
  process.stdout.write(`${"t s".padStart(6)} ${"ops/s".padStart(8)} ${"errors".padStart(7)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)} ${"late".padStart(6)} ${"RSS MB".padStart(8)}\n`);

  // 2. The soak: calls started at the target rate (paced every 5 ms), at most CONCURRENCY in flight.
  const samples: { t: number; rssMb: number }[] = [];
  const errorsTotal = new Map<string, number>();
  let done = 0;
  let late = 0; // calls that could not start on time because CONCURRENCY were in flight
  let inFlight = 0;
  const start = Date.now();
  const end = start + SECONDS * 1000;
  let started = 0;
  let nextReport = start + REPORT_EVERY * 1000;
  while (Date.now() < end) {
    const due = Math.floor(((Date.now() - start) / 1000) * target);
    while (started < due) {
      if (inFlight >= CONCURRENCY) {
        late += due - started;
        started = due;
        break;
      }
      started++;
      inFlight++;
      void run().finally(() => inFlight--);
    }
    if (Date.now() >= nextReport) {
      const w = stats.take();
      done += w.count;
      for (const [k, v] of w.errors) errorsTotal.set(k, (errorsTotal.get(k) ?? 0) + v);
      const t = (Date.now() - start) / 1000;
      const rssMb = rssOf(daemon.pid);
      samples.push({ t, rssMb });
      const errs = [...w.errors.values()].reduce((a, b) => a + b, 0);
      process.stdout.write(
        `${t.toFixed(0).padStart(6)} ${(w.count / REPORT_EVERY).toFixed(0).padStart(8)} ${String(errs).padStart(7)} ${w.p(0.5).toFixed(2).padStart(8)} ${w.p(0.99).toFixed(2).padStart(8)} ${String(late).padStart(6)} ${rssMb.toFixed(1).padStart(8)}\n`,
      );
      nextReport += REPORT_EVERY * 1000;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 10));
  const last = stats.take();
  done += last.count;
  for (const [k, v] of last.errors) errorsTotal.set(k, (errorsTotal.get(k) ?? 0) + v);
  samples.push({ t: (Date.now() - start) / 1000, rssMb: rssOf(daemon.pid) }); // the end of the run counts too

  // 3. Summary: the RSS slope over the second half of the run (the first half includes warm-up growth:
  // JIT, pools, caches filling), and over the whole run, by least squares.
  const errors = [...errorsTotal.values()].reduce((a, b) => a + b, 0);
  const half = samples.filter((s) => s.t >= SECONDS / 2);
  const slopeAll = slope(samples);
  const slopeHalf = slope(half.length >= 2 ? half : samples);
  const summary = {
    date: new Date().toISOString(),
    seconds: SECONDS,
    maxOpsPerSecond: Math.round(maxRate),
    targetOpsPerSecond: Math.round(target),
    achievedOpsPerSecond: Math.round(done / SECONDS),
    operations: done,
    keysCreated,
    errors,
    errorKinds: Object.fromEntries(errorsTotal),
    late,
    rssMb: { first: samples[0]?.rssMb, last: samples.at(-1)?.rssMb, max: Math.max(...samples.map((s) => s.rssMb)) },
    rssSlopeMbPerMinute: { wholeRun: round(slopeAll * 60), secondHalf: round(slopeHalf * 60) },
  };
  process.stdout.write(`\n${JSON.stringify(summary, null, 2)}\n`);
  writeFileSync(join(PROJECT_ROOT, "dist-bench", "results-soak.json"), `${JSON.stringify(summary, null, 2)}\n`);
  if (errors > 0) process.exitCode = 1;
}

/** Latencies and error kinds of one reporting window. */
class Window {
  private lat: number[] = [];
  private errs = new Map<string, number>();
  ok(ms: number): void {
    this.lat.push(ms);
  }
  error(kind: string): void {
    this.errs.set(kind, (this.errs.get(kind) ?? 0) + 1);
  }
  take(): { count: number; errors: Map<string, number>; p(q: number): number } {
    const lat = this.lat.sort((a, b) => a - b);
    const errors = this.errs;
    this.lat = [];
    this.errs = new Map();
    return { count: lat.length + [...errors.values()].reduce((a, b) => a + b, 0), errors, p: (q) => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? 0 };
  }
}

/** Least-squares slope of RSS (MB) over time (s). */
function slope(s: { t: number; rssMb: number }[]): number {
  if (s.length < 2) return 0;
  const mt = s.reduce((a, x) => a + x.t, 0) / s.length;
  const mr = s.reduce((a, x) => a + x.rssMb, 0) / s.length;
  const num = s.reduce((a, x) => a + (x.t - mt) * (x.rssMb - mr), 0);
  const den = s.reduce((a, x) => a + (x.t - mt) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

const round = (x: number) => Math.round(x * 1000) / 1000;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The daemon with gRPC, the AWS facade and metrics on free loopback ports, as an operator runs it. */
async function startSoakDaemon(dir: string, conf: string, label: string, modulePath: string, pinFile: string) {
  createAccessKeyFile(join(dir, "access-key.json"), "arn:aws:iam::111122223333:root"); // the administrator (docs/authorization.md)
  const configPath = join(dir, "p11kms.yaml");
  const uri = `pkcs11:token=${label}?module-path=${modulePath}&pin-source=file:${pinFile}`;
  writeFileSync(
    configPath,
    [
      "# Written by the soak (bench/soak/main.ts) for one run.",
      "grpc:",
      "  listen: 127.0.0.1:0",
      "  insecure: true",
      "aws:",
      "  listen: 127.0.0.1:0",
      "  insecure: true",
      "  accessKeyFiles: [access-key.json]",
      "metrics:",
      "  listen: 127.0.0.1:0",
      "  enabled: true",
      "storage:",
      `  sqlitePath: ${JSON.stringify(join(dir, "p11kms.db"))}`,
      "keyStores:",
      "  - id: default",
      `    uri: ${JSON.stringify(uri)}`,
      "    maxSessions: 8",
      "log:",
      "  level: warn",
      "moduleEnvironment:",
      `  SOFTHSM2_CONF: ${JSON.stringify(conf)}`,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  const child = Child.start(cleanup, "p11kms daemon", process.execPath, [join(PROJECT_ROOT, "bin/p11kms"), "serve", "--config", configPath], {
    ...process.env,
    P11KMS_LOG_LEVEL: "info",
  });
  const ports = await child.waitFor(
    (line) => {
      const j = jsonLine(line);
      return j?.msg === "p11kms serving" ? { grpc: Number(j.grpcPort), aws: Number(j.awsPort) } : undefined;
    },
    30_000,
    'the "p11kms serving" log line',
  );
  const accessKey = JSON.parse(readFileSync(join(dir, "access-key.json"), "utf8")) as { accessKeyId: string; secretAccessKey: string };
  return { pid: child.pid!, grpcAddress: `127.0.0.1:${ports.grpc}`, awsEndpoint: `http://127.0.0.1:${ports.aws}`, accessKey };
}

// Last, so every declaration above is initialised before it runs.
cleanup.onSignals();
try {
  await main();
} catch (err) {
  if (!cleanup.interrupted) process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await cleanup.runAll();
}
