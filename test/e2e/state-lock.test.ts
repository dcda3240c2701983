import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { CreateKeyRequest, EncryptRequest } from "../../src/gen/p11kms/v1/kms.js";
import { CLI, client, type DaemonHandle, REPO, rpc, startDaemon, writeConfig } from "../helpers/daemon.js";
import { createTestToken, type TestToken } from "../helpers/softhsm.js";

/**
 * One daemon per state (docs/operations.md "One daemon per state"): a second `p11kms serve` on the database,
 * the audit directory or the token of a running one exits 1 with a one-line reason naming the state, its
 * lock file and the holder's PID, having written nothing; the first one keeps serving. The locks are held
 * through the whole shutdown, and a daemon killed with SIGKILL leaves none behind.
 */
const tokens: TestToken[] = [];
const dirs: string[] = [];
afterAll(() => {
  tokens.forEach((t) => t.remove());
  dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
});

function freshToken(): TestToken {
  const t = createTestToken("p11kms-e2e");
  tokens.push(t);
  return t;
}

interface Refused {
  readonly code: number | null;
  /** The fatal log line's reason (err.message). */
  readonly reason: string;
  readonly logs: Record<string, unknown>[];
}

/** Runs `p11kms serve` and expects it to exit before serving. */
function serveExpectingRefusal(configPath: string): Promise<Refused> {
  const child = spawn(process.execPath, [CLI, "serve", "--config", configPath], {
    cwd: REPO,
    env: { ...process.env, SOFTHSM2_CONF: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on("line", (line) => {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (entry.msg === "p11kms serving") child.kill("SIGKILL"); // the test fails below
    } catch {
      // not a log line
    }
  });
  return new Promise((res, rej) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      rej(new Error(`the second daemon neither served nor exited; stderr: ${stderr}`));
    }, 30_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      const fatal = logs.find((l) => l.msg === "p11kms failed to start");
      res({ code, reason: (fatal?.err as { message?: string } | undefined)?.message ?? `(no fatal line; stderr: ${stderr}; logs: ${JSON.stringify(logs)})`, logs });
    });
  });
}

/** Every file under `dir` with its size, mtime and content hash: "nothing written" is this not changing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const st = statSync(p);
        out[p.slice(dir.length)] = `${st.size} ${st.mtimeMs} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
      }
    }
  };
  walk(dir);
  return out;
}

/** A configuration of its own directory, with any of a running daemon's database, audit file or token. */
function configWith(parts: { sqlitePath?: string; auditFile?: string; token?: TestToken }): string {
  const dir = mkdtempSync(join(tmpdir(), "p11kms-lock-b-"));
  dirs.push(dir);
  const token = parts.token ?? freshToken();
  const path = join(dir, "b.yaml");
  writeFileSync(
    path,
    `grpc: { listen: "127.0.0.1:0" }
aws: { listen: "127.0.0.1:0" }
metrics: { enabled: false }
storage: { sqlitePath: ${JSON.stringify(parts.sqlitePath ?? join(dir, "p11kms.db"))} }
audit: { file: ${JSON.stringify(parts.auditFile ?? join(dir, "audit", "audit.jsonl"))} }
keyStores:
  - id: default
    uri: "pkcs11:token=${token.label}?module-path=${token.modulePath}&pin-source=file:${join(token.dir, "pin")}"
moduleEnvironment:
  SOFTHSM2_CONF: "${token.conf}"
log: { level: debug }
`,
  );
  return path;
}

async function createKey(d: DaemonHandle): Promise<string> {
  const c = client(d.endpoint);
  try {
    const keyId = (await rpc(c, c.createKey, CreateKeyRequest.fromPartial({}))).keyMetadata!.keyId;
    await rpc(c, c.encrypt, EncryptRequest.fromPartial({ keyId, plaintext: Buffer.from("still serving") }));
    return keyId;
  } finally {
    c.close();
  }
}

const held = (state: string, lockFile: string, pid: number | undefined) =>
  `${state} is in use: another p11kms process (pid ${pid}) holds its lock ${lockFile}; one daemon per state (docs/operations.md "One daemon per state")`;

describe("one daemon per state", () => {
  it("a second daemon on the same configuration exits 1 naming the database and the holder's PID; it writes nothing and the first keeps serving", async () => {
    const a = await startDaemon({ token: freshToken() });
    try {
      await createKey(a);
      expect(a.logs.find((l) => l.msg === "state locks held")?.lockFiles).toHaveLength(3); // database, audit directory, token
      const before = snapshot(a.token.dir); // the database, the audit directory and the SoftHSM2 token directory
      const b = await serveExpectingRefusal(a.configPath);
      expect(b.code).toBe(1);
      const db = realpathSync(join(a.token.dir, "p11kms.db"));
      expect(b.reason).toBe(held(`the metadata database ${db}`, `${db}.lock`, a.process.pid));
      // Refused before the start-up worker was given a token, the store opened or the audit log started.
      expect(b.logs.map((l) => l.msg)).not.toContain("key store opened");
      expect(b.logs.map((l) => l.msg)).not.toContain("audit signing key ready");
      expect(snapshot(a.token.dir)).toEqual(before);
      expect(a.process.exitCode).toBeNull();
      await createKey(a);
      expect(a.logs.filter((l) => (l.level as number) >= 50)).toEqual([]);
    } finally {
      expect(await a.stop()).toBe(0);
    }
  });

  it("each state alone is enough: the same database, the same audit directory, or the same token, the rest different", async () => {
    const a = await startDaemon({ token: freshToken() });
    try {
      const before = snapshot(a.token.dir);
      const pid = a.process.pid;
      const db = realpathSync(join(a.token.dir, "p11kms.db"));
      const auditDir = realpathSync(join(a.token.dir, "audit"));
      const tokenDir = realpathSync(join(a.token.dir, "tokens"));

      const sameDb = await serveExpectingRefusal(configWith({ sqlitePath: join(a.token.dir, "p11kms.db") }));
      expect([sameDb.code, sameDb.reason]).toEqual([1, held(`the metadata database ${db}`, `${db}.lock`, pid)]);

      // Another file in the same directory is the same audit directory.
      const sameAudit = await serveExpectingRefusal(configWith({ auditFile: join(a.token.dir, "audit", "other.jsonl") }));
      expect([sameAudit.code, sameAudit.reason]).toEqual([1, held(`the audit directory ${auditDir}`, join(auditDir, ".p11kms.lock"), pid)]);

      const sameToken = await serveExpectingRefusal(configWith({ token: a.token }));
      expect([sameToken.code, sameToken.reason]).toEqual([
        1,
        held(`the token '${a.token.label}' of key store 'default' (module ${a.token.modulePath})`, join(tokenDir, `.p11kms-token-${a.token.label}.lock`), pid),
      ]);
      expect(sameToken.logs.map((l) => l.msg)).not.toContain("key store opened"); // never logged in to A's token

      expect(snapshot(a.token.dir)).toEqual(before);
      await createKey(a);
    } finally {
      expect(await a.stop()).toBe(0);
    }
  });

  it("the locks are held while the first daemon drains at shutdown: a second one is refused until it has exited", async () => {
    const token = freshToken();
    const a = await startDaemon({ token, configPath: writeConfig(token, "shutdown:\n  drainTimeoutMs: 60000\n") });
    // An AWS request whose body never finishes keeps the drain open (until the socket goes).
    const socket = connect(Number(new URL(a.awsEndpoint).port), "127.0.0.1");
    await new Promise<void>((res) => socket.once("connect", res));
    socket.write("POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: TrentService.ListKeys\r\nContent-Length: 100\r\n\r\n{");
    await new Promise((r) => setTimeout(r, 300));
    const exited = new Promise<number | null>((res) => a.process.once("exit", res));
    a.process.kill("SIGTERM");
    await expect.poll(() => a.logs.some((l) => l.msg === "shutting down"), { timeout: 10_000 }).toBe(true);

    const b = await serveExpectingRefusal(a.configPath);
    expect(a.process.exitCode).toBeNull(); // still draining when B was refused
    expect(b.code).toBe(1);
    expect(b.reason).toMatch(/^the metadata database .* is in use: another p11kms process \(pid \d+\) holds its lock/);
    expect(a.logs.map((l) => l.msg)).not.toContain("p11kms stopped");

    socket.destroy(); // the drain ends; A closes (the closing digest), then exits
    expect(await exited).toBe(0);
    expect(a.logs.map((l) => l.msg)).toContain("p11kms stopped");
    const c = await startDaemon({ token, configPath: a.configPath }); // free once A has exited
    expect(await c.stop()).toBe(0);
  });

  it("a daemon killed with SIGKILL leaves no lock behind: the next one starts at once on the same state", async () => {
    const a = await startDaemon({ token: freshToken() });
    const keyId = await createKey(a);
    expect(await a.stop("SIGKILL")).toBeNull();
    const b = await startDaemon({ token: a.token, configPath: a.configPath });
    try {
      expect(b.logs.find((l) => l.msg === "state locks held")?.lockFiles).toHaveLength(3);
      const c = client(b.endpoint);
      await rpc(c, c.encrypt, EncryptRequest.fromPartial({ keyId, plaintext: Buffer.from("after kill -9") }));
      c.close();
    } finally {
      expect(await b.stop()).toBe(0);
    }
  });
});
