/**
 * Envelope encryption throughput of a 1 GiB stream against plain node:crypto AES-256-GCM on the same source
 * and sink, in one process (one core: every cipher call runs on the main thread), plus peak RSS.
 * Build and run: see docs/benchmarks-envelope.md. Options: --gib <n> (default 1), --rounds <n> (default 3).
 */
import { execFileSync } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { Readable, type Transform, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { DecryptStream } from "../../packages/client/src/envelope/decrypt-stream.js";
import { EncryptStream } from "../../packages/client/src/envelope/encrypt-stream.js";
import type { DecryptionMaterials, EncryptionMaterials, MaterialsProvider } from "../../packages/client/src/envelope/materials.js";

const args = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const TOTAL = Math.round(opt("gib", 1) * 1024 ** 3);
const ROUNDS = opt("rounds", 3);
const CHUNK = 64 * 1024; // what fs.createReadStream delivers

/**
 * Materials without a KMS: the benchmark measures the stream code; the one GenerateDataKey call per message
 * a real keyring adds (about a millisecond) does not change a 1 GiB figure.
 */
class StaticMaterials implements MaterialsProvider {
  private readonly key = randomBytes(32);
  async encryptionMaterials(): Promise<EncryptionMaterials> {
    return { dataKey: Buffer.from(this.key), encryptedDataKeys: [{ providerId: "bench", keyArn: "bench", blob: randomBytes(64) }] };
  }
  async decryptionMaterials(): Promise<DecryptionMaterials> {
    return { dataKey: Buffer.from(this.key), keyArn: "bench" };
  }
}

const block = randomBytes(CHUNK);

function source(total: number): Readable {
  let sent = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(CHUNK, total - sent);
      sent += n;
      this.push(n === CHUNK ? block : block.subarray(0, n));
    },
  });
}

function sink(): Writable {
  return new Writable({ highWaterMark: CHUNK, write: (_c, _e, cb) => cb(), writev: (_c, cb) => cb() });
}

type Mode = "plain" | "envelope" | "roundtrip";
const LABELS: Record<Mode, string> = { plain: "node:crypto AES-256-GCM", envelope: "envelope encrypt", roundtrip: "envelope encrypt+decrypt" };

/** One run in this process: the pipeline's time and the process's peak RSS (which is then this run's). */
async function runOne(mode: Mode): Promise<{ seconds: number; maxRssMiB: number }> {
  const materials = new StaticMaterials();
  const key = randomBytes(32);
  const stages: Transform[] =
    mode === "plain"
      ? [createCipheriv("aes-256-gcm", key, randomBytes(12))]
      : mode === "envelope"
        ? [new EncryptStream(materials, { context: { bench: "1" } })]
        : [new EncryptStream(materials), new DecryptStream(materials)]; // decrypted on the fly: storing 1 GiB would skew RSS
  // Warm-up (JIT) on 64 MiB with fresh streams of the same kind, not timed.
  const warm: Transform[] = mode === "plain" ? [createCipheriv("aes-256-gcm", key, randomBytes(12))] : [new EncryptStream(materials), ...(mode === "roundtrip" ? [new DecryptStream(materials)] : [])];
  await pipeline([source(64 * 1024 * 1024), ...warm, sink()]);
  const t = process.hrtime.bigint();
  await pipeline([source(TOTAL), ...stages, sink()]);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  return { seconds, maxRssMiB: Math.round((process.resourceUsage().maxRSS * 1024) / 1048576) };
}

/**
 * Every run in a fresh child process, so each peak RSS is that run's alone (a sampling timer cannot see
 * the peak: a synchronous source and sink keep the event loop from reaching its timers). The modes are
 * interleaved so drift on a shared machine does not favour either; medians are reported.
 */
async function main(): Promise<void> {
  const mode = args[args.indexOf("--mode") + 1] as Mode | undefined;
  if (args.includes("--mode") && mode) {
    process.stdout.write(`${JSON.stringify(await runOne(mode))}\n`);
    return;
  }
  process.stderr.write(`envelope benchmark: ${(TOTAL / 1024 ** 3).toFixed(2)} GiB stream, ${ROUNDS} rounds, Node ${process.version}, one process per run\n`);
  const runs: Record<Mode, { seconds: number; maxRssMiB: number }[]> = { plain: [], envelope: [], roundtrip: [] };
  for (let r = 0; r < ROUNDS; r++) {
    for (const m of ["plain", "envelope", "roundtrip"] as const) {
      const out = execFileSync(process.execPath, [process.argv[1]!, "--mode", m, "--gib", String(TOTAL / 1024 ** 3)], { encoding: "utf8" });
      const res = JSON.parse(out) as { seconds: number; maxRssMiB: number };
      runs[m].push(res);
      process.stderr.write(`  ${LABELS[m].padEnd(26)} ${(TOTAL / 1048576 / res.seconds).toFixed(0).padStart(6)} MiB/s  peak RSS ${res.maxRssMiB} MiB\n`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const mibps = (m: Mode) => Math.round(TOTAL / 1048576 / median(runs[m].map((x) => x.seconds)));
  const peak = (m: Mode) => Math.max(...runs[m].map((x) => x.maxRssMiB));
  const result = {
    bytes: TOTAL,
    plainGcmMiBps: mibps("plain"),
    envelopeEncryptMiBps: mibps("envelope"),
    ratio: Number((median(runs.plain.map((x) => x.seconds)) / median(runs.envelope.map((x) => x.seconds))).toFixed(3)),
    envelopeRoundTripMiBps: mibps("roundtrip"),
    peakRssMiB: { plainGcm: peak("plain"), envelopeEncrypt: peak("envelope"), envelopeRoundTrip: peak("roundtrip") },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.stderr.write(
    `envelope encryption at ${(result.ratio * 100).toFixed(1)}% of plain AES-256-GCM (target >= 80%): ${result.ratio >= 0.8 ? "OK" : "MISSED"}\n` +
      `peak RSS of envelope encryption ${result.peakRssMiB.envelopeEncrypt} MiB (target <= 100 MiB): ${result.peakRssMiB.envelopeEncrypt <= 100 ? "OK" : "MISSED"}\n`,
  );
}

await main();
