/**
 * `make bench`, AWS facade part: Encrypt 4 KB and GenerateDataKey over the AWS JSON 1.1 endpoint with SigV4
 * (h2load --h1, pre-signed requests), next to a trivial node:http responder (the HTTP ceiling) and, when
 * installed, moto_server serving the same Encrypt request. See docs/benchmarks.md.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CreateKeyCommand, EncryptCommand, KMSClient } from "@aws-sdk/client-kms";
import { createAccessKeyFile } from "../../src/cli/access-key-file.js";
import { PROJECT_ROOT } from "../lib/paths.js";
import { h1load, type H1Result } from "./h1load.js";
import { presign } from "./presign.js";

const REGION = "us-east-1";
const CLIENTS = Number(process.env.BENCH_HTTP_CLIENTS ?? 16);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const children: ChildProcess[] = [];
const work = mkdtempSync(join(tmpdir(), "p11kms-bench-aws-"));

interface Row {
  scenario: string;
  result: H1Result;
}

try {
  const rows: Row[] = [];
  const { endpoint, credentials } = await startDaemon();
  const kms = new KMSClient({ endpoint, region: REGION, credentials, maxAttempts: 1 });
  const keyId = (await kms.send(new CreateKeyCommand({ Description: "bench" }))).KeyMetadata!.KeyId!;
  const encryptBody = JSON.stringify({ KeyId: keyId, Plaintext: Buffer.alloc(4096, 7).toString("base64") });
  const gdkBody = JSON.stringify({ KeyId: keyId, KeySpec: "AES_256" });
  rows.push({ scenario: "AWS Encrypt 4 KB (SigV4, HTTP/1.1)", result: await scenario(endpoint, "Encrypt", encryptBody, credentials) });
  rows.push({ scenario: "AWS GenerateDataKey AES_256", result: await scenario(endpoint, "GenerateDataKey", gdkBody, credentials) });
  kms.destroy();

  const responder = await startChild("node:http responder", process.execPath, [join(PROJECT_ROOT, "dist-bench/bench/aws/responder.js"), "0"]);
  rows.push({ scenario: "node:http fixed responder (ceiling)", result: await scenario(`http://127.0.0.1:${responder}`, "Encrypt", encryptBody, credentials) });

  // moto_server is only a point of comparison: when it fails (it sometimes does not start, or leaves a
  // connection hanging), the report goes on without it and says why.
  try {
    const moto = await startMoto();
    if (moto) {
      const motoKms = new KMSClient({ endpoint: moto, region: REGION, credentials, maxAttempts: 1 });
      const motoKey = (await motoKms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
      await motoKms.send(new EncryptCommand({ KeyId: motoKey, Plaintext: Buffer.alloc(4096, 7) }));
      motoKms.destroy();
      const motoBody = JSON.stringify({ KeyId: motoKey, Plaintext: Buffer.alloc(4096, 7).toString("base64") });
      rows.push({ scenario: "moto_server Encrypt 4 KB (same requests)", result: await scenario(moto, "Encrypt", motoBody, credentials) });
    }
  } catch (err) {
    process.stderr.write(`moto_server comparison skipped: ${(err instanceof Error ? err.message : String(err)).split("\n")[0]}\n`);
  }
  report(rows);
} catch (err) {
  process.stderr.write(`aws bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
} finally {
  for (const c of children) c.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}

/** Warm-up, then a timed run; every request must have been answered 200 (the facade answers errors 4xx/5xx). */
async function scenario(endpoint: string, target: string, body: string, credentials: { accessKeyId: string; secretAccessKey: string }): Promise<H1Result> {
  const url = new URL(endpoint);
  const headers = await presign({ url, target, body, credentials, region: REGION });
  const check = await fetch(endpoint, { method: "POST", headers, body });
  if (check.status !== 200) throw new Error(`precheck of ${target} at ${endpoint} failed: ${check.status} ${await check.text()}`);
  const bodyFile = join(work, `${target}.json`);
  writeFileSync(bodyFile, body);
  const logFile = join(work, `${target}.log`);
  await h1load({ url: `${endpoint}/`, bodyFile, headers, clients: CLIENTS, durationS: WARMUP, logFile });
  const result = await h1load({ url: `${endpoint}/`, bodyFile, headers, clients: CLIENTS, durationS: SECONDS, logFile });
  // h2load can count one more 2xx than requests done (a response that lands as the timer ends), so only fewer is a failure.
  if (result.status2xx < result.done) throw new Error(`${target}: ${result.done - result.status2xx} of ${result.done} requests were not answered 200`);
  process.stderr.write(`  ${target} @ ${endpoint}: ${result.reqPerSec.toFixed(0)} req/s\n`);
  return result;
}

async function startDaemon(): Promise<{ endpoint: string; credentials: { accessKeyId: string; secretAccessKey: string } }> {
  const conf = execFileSync(join(PROJECT_ROOT, "softhsm/init-token.sh"), [work, "bench-aws"], { encoding: "utf8" }).trim();
  createAccessKeyFile(join(work, "access-key.json"), "arn:aws:iam::111122223333:root"); // the administrator (docs/authorization.md)
  writeFileSync(
    join(work, "p11kms.yaml"),
    `grpc: { listen: "127.0.0.1:0" }\naws: { listen: "127.0.0.1:0", accessKeyFiles: [access-key.json] }\nmetrics: { enabled: false }\n` +
      `storage: { sqlitePath: p11kms.db }\nlog: { level: warn }\nmoduleEnvironment: { SOFTHSM2_CONF: "${conf}" }\n` +
      `keyStores:\n  - id: default\n    uri: "pkcs11:token=bench-aws?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:pin"\n`,
  );
  const child = spawn(process.execPath, [join(PROJECT_ROOT, "bin/p11kms"), "serve", "--config", join(work, "p11kms.yaml")], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, P11KMS_LOG_LEVEL: "info" },
  });
  children.push(child);
  const port = await new Promise<number>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`daemon exited with ${code}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      if (line.includes('"p11kms serving"')) resolve((JSON.parse(line) as { awsPort: number }).awsPort);
    });
  });
  const credentials = JSON.parse(readFileSync(join(work, "access-key.json"), "utf8")) as { accessKeyId: string; secretAccessKey: string };
  return { endpoint: `http://127.0.0.1:${port}`, credentials };
}

async function startChild(name: string, cmd: string, args: string[]): Promise<number> {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`${name} exited with ${code}`)));
    createInterface({ input: child.stdout! }).once("line", (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
}

/** moto_server (a Python KMS mock) as a comparison peer, when it is installed; undefined otherwise. */
async function startMoto(): Promise<string | undefined> {
  const bin = execFileSync("sh", ["-c", "command -v moto_server || true"], { encoding: "utf8" }).trim();
  if (!bin || !existsSync(bin)) {
    process.stderr.write("  moto_server not installed: skipping the comparison\n");
    return undefined;
  }
  const port = 40000 + Math.floor(Math.random() * 20000);
  children.push(spawn(bin, ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" }));
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      await fetch(endpoint);
      return endpoint;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error("moto_server did not start within 30 s");
}

function report(rows: Row[]): void {
  const line = (r: Row) =>
    `${r.scenario.padEnd(44)} ${r.result.reqPerSec.toFixed(0).padStart(8)} ${r.result.latency.p50.toFixed(2).padStart(8)} ${r.result.latency.p99.toFixed(2).padStart(8)}`;
  const out = [`${"scenario".padEnd(44)} ${"req/s".padStart(8)} ${"p50 ms".padStart(8)} ${"p99 ms".padStart(8)}`, ...rows.map(line)];
  const get = (prefix: string) => rows.find((r) => r.scenario.startsWith(prefix))?.result.reqPerSec;
  const enc = get("AWS Encrypt")!;
  const ceiling = get("node:http");
  const moto = get("moto_server");
  out.push("");
  out.push(`AWS Encrypt 4 KB: ${enc.toFixed(0)} req/s (aim >= 5500: ${enc >= 5500 ? "met" : "NOT MET"})`);
  if (ceiling) out.push(`AWS Encrypt 4 KB / node:http responder: ${(enc / ceiling).toFixed(2)}`);
  if (moto) out.push(`AWS Encrypt 4 KB / moto_server Encrypt 4 KB: ${(enc / moto).toFixed(1)}x`);
  process.stdout.write(`\n${out.join("\n")}\n`);
  writeFileSync(join(PROJECT_ROOT, "dist-bench", "results-aws.json"), `${JSON.stringify({ date: new Date().toISOString(), clients: CLIENTS, rows }, null, 2)}\n`);
}
