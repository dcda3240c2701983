import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { type CallOptions, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { createAccessKeyFile } from "../../src/cli/access-key-file.js";
import { KeyManagementServiceClient } from "../../src/gen/p11kms/v1/kms.js";
import { createTestToken, type TestToken } from "./softhsm.js";

export const REPO = resolve(import.meta.dirname, "../..");
export const CLI = join(REPO, "bin/p11kms");
/** The administrator of the default account: the e2e access key and plaintext gRPC callers act as it. */
export const ADMIN_PRINCIPAL = "arn:aws:iam::111122223333:root";

export interface DaemonHandle {
  readonly token: TestToken;
  readonly configPath: string;
  readonly port: number;
  readonly endpoint: string;
  /** The AWS-compatible endpoint, e.g. http://127.0.0.1:41234 */
  readonly awsEndpoint: string;
  readonly accessKey: { accessKeyId: string; secretAccessKey: string };
  readonly process: ChildProcess;
  /** Every JSON log line the daemon wrote so far. */
  readonly logs: Record<string, unknown>[];
  /** SIGTERM, then wait for exit; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Writes a configuration for `token` and returns its path. */
export function writeConfig(token: TestToken, extra = ""): string {
  const path = join(token.dir, "p11kms.yaml");
  if (!existsSync(join(token.dir, "access-key.json"))) createAccessKeyFile(join(token.dir, "access-key.json"), ADMIN_PRINCIPAL);
  writeFileSync(
    path,
    `grpc:
  listen: 127.0.0.1:0
aws:
  listen: 127.0.0.1:0
  accessKeyFiles: [access-key.json]
metrics:
  enabled: false
storage:
  sqlitePath: p11kms.db
keyStores:
  - id: default
    uri: "pkcs11:token=${token.label}?module-path=${token.modulePath}&pin-source=file:pin"
moduleEnvironment:
  SOFTHSM2_CONF: "${token.conf}"
log:
  level: debug
${extra}`,
  );
  return path;
}

/**
 * Starts the built daemon (dist/) as a child process on a free loopback port, with a fresh token unless
 * one is given (to restart on the same token and database).
 */
export async function startDaemon(opts: { token?: TestToken; configPath?: string; env?: Record<string, string> } = {}): Promise<DaemonHandle> {
  const token = opts.token ?? createTestToken("p11kms-e2e");
  const configPath = opts.configPath ?? writeConfig(token);
  const child = spawn(process.execPath, [CLI, "serve", "--config", configPath], {
    cwd: REPO,
    env: { ...process.env, SOFTHSM2_CONF: "", ...opts.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
  const ports = await new Promise<{ grpc: number; aws: number }>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`daemon did not start in time; stderr: ${stderr}`)), 20_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === "p11kms serving") {
        clearTimeout(timer);
        res({ grpc: entry.grpcPort as number, aws: entry.awsPort as number });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rej(new Error(`daemon exited with ${code} before serving; stderr: ${stderr}; logs: ${JSON.stringify(logs)}`));
    });
  });
  return {
    token,
    configPath,
    port: ports.grpc,
    endpoint: `127.0.0.1:${ports.grpc}`,
    awsEndpoint: `http://127.0.0.1:${ports.aws}`,
    accessKey: JSON.parse(readFileSync(join(token.dir, "access-key.json"), "utf8")) as DaemonHandle["accessKey"],
    process: child,
    logs,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function client(endpoint: string): KeyManagementServiceClient {
  return new KeyManagementServiceClient(endpoint, credentials.createInsecure());
}

// The 4-argument overload is the last one ts-proto generates, which is the one TypeScript infers from.
type Unary<Req, Res> = (
  req: Req,
  md: Metadata,
  options: Partial<CallOptions>,
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Promise form of a unary call. */
export function rpc<Req, Res>(c: KeyManagementServiceClient, method: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((res, rej) =>
    method.call(c, req, new Metadata(), { deadline: Date.now() + 30_000 }, (err, r) => (err ? rej(err) : res(r))),
  );
}

/** Awaits a call that must fail and returns its gRPC code and AWS exception name. */
export async function rpcError<Req, Res>(
  c: KeyManagementServiceClient,
  method: Unary<Req, Res>,
  req: Req,
): Promise<{ code: number; type: string | undefined; details: string }> {
  try {
    await rpc(c, method, req);
  } catch (err) {
    const e = err as ServiceError;
    return { code: e.code, type: e.metadata?.get("x-kms-error-type")[0] as string | undefined, details: e.details };
  }
  throw new Error("expected the call to fail");
}
