import { spawn } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { GenerateRandomCommand } from "@aws-sdk/client-kms";
import { afterEach, describe, expect, it } from "vitest";
import { createAccessKeyFile } from "../../src/cli/access-key-file.js";
import { auditFiles, verifyCli } from "../helpers/audit.js";
import { kmsClient } from "../helpers/aws.js";
import { CLI, type DaemonHandle, REPO, startDaemon, writeConfig } from "../helpers/daemon.js";
import { createTestToken, type TestToken } from "../helpers/softhsm.js";

/**
 * Signals as `make run`, a terminal and supervisors send them (docs/operations.md, "Signals"): a second
 * SIGTERM during shutdown is ignored (the run still ends with its shutdown digest), a third forces an exit, a
 * SIGTERM during start-up is honoured once start-up has finished, SIGHUP reloads the access key files.
 */
let d: DaemonHandle | undefined;
let token: TestToken | undefined;
afterEach(async () => {
  await d?.stop("SIGKILL");
  d?.token.remove();
  token?.remove();
  d = token = undefined;
});

/** Config with a drain long enough that signals sent during shutdown land while it is still running. */
const SLOW_DRAIN = "shutdown:\n  drainTimeoutMs: 2500\n";

/**
 * Holds the drain open: an AWS facade request whose body never finishes is an active connection, which the
 * HTTP server waits for until the drain timeout.
 */
async function holdRequestOpen(awsEndpoint: string): Promise<Socket> {
  const { hostname, port } = new URL(awsEndpoint);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((res, rej) => socket.once("connect", () => res()).once("error", rej));
  socket.on("error", () => undefined); // closed by the daemon at the drain timeout
  socket.write(`POST / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{"Num`);
  return socket;
}

/** The daemon's exit code, without sending it anything (DaemonHandle.stop would send one more signal). */
function exitOf(d: DaemonHandle): Promise<number | null> {
  if (d.process.exitCode !== null) return Promise.resolve(d.process.exitCode);
  return new Promise((res) => d.process.once("exit", (code) => res(code)));
}

async function waitForLog(d: DaemonHandle, msg: string, timeoutMs = 10_000): Promise<Record<string, unknown>> {
  const t = Date.now();
  for (;;) {
    const hit = d.logs.find((l) => l.msg === msg);
    if (hit) return hit;
    if (Date.now() - t > timeoutMs) throw new Error(`no log line "${msg}" within ${timeoutMs} ms; logs: ${JSON.stringify(d.logs.map((l) => l.msg))}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A daemon in its drain (held open by an unfinished request) that has been sent `first` and then a second
 * SIGTERM, which it said it ignores. Returns the socket holding the drain open.
 */
async function inShutdownAfterTwoSignals(first: NodeJS.Signals): Promise<{ d: DaemonHandle; dir: string; socket: Socket }> {
  token = createTestToken("p11kms-signals");
  const daemon = (d = await startDaemon({ token, configPath: writeConfig(token, SLOW_DRAIN) }));
  const socket = await holdRequestOpen(daemon.awsEndpoint);
  daemon.process.kill(first);
  await waitForLog(daemon, "shutting down");
  daemon.process.kill("SIGTERM"); // e.g. make forwarding its own
  await waitForLog(daemon, "already shutting down: signal ignored (one more forces an exit that leaves the audit log's tail unsigned)");
  return { d: daemon, dir: token.dir, socket };
}

describe("signals", () => {
  it("ignores a second SIGTERM during shutdown: the drain finishes and the run ends with its shutdown digest", async () => {
    const { d: dm, dir, socket } = await inShutdownAfterTwoSignals("SIGTERM");
    expect(await exitOf(dm)).toBe(0);
    socket.destroy();
    expect(dm.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(["drain timeout reached: cancelling in-flight calls", "p11kms stopped"]));
    const verified = verifyCli(auditFiles(join(dir, "audit")));
    expect(verified.report).toMatchObject({ Result: "VALID", Problems: [], Warnings: [] });
  });

  it("forces an exit (status 1) on the third signal, saying the audit tail is left unsigned", async () => {
    const { d: dm, socket } = await inShutdownAfterTwoSignals("SIGINT");
    dm.process.kill("SIGTERM");
    expect(await exitOf(dm)).toBe(1);
    socket.destroy();
    expect(dm.logs.find((l) => l.msg === "forced exit before the shutdown finished: the audit log's tail is left unsigned")).toMatchObject({ signal: "SIGTERM" });
    expect(dm.logs.map((l) => l.msg)).not.toContain("p11kms stopped");
  });

  it("honours a SIGTERM sent during start-up once start-up has finished, and stops cleanly", async () => {
    token = createTestToken("p11kms-signals");
    const child = spawn(process.execPath, [CLI, "serve", "--config", writeConfig(token)], {
      cwd: REPO,
      env: { ...process.env, SOFTHSM2_CONF: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
    const logs: Record<string, unknown>[] = [];
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      // The first line the daemon writes comes long before it serves: the signal lands mid-start-up.
      if (logs.length === 1) child.kill("SIGTERM");
    });
    expect(await exited).toBe(0);
    const msgs = logs.map((l) => l.msg);
    expect(logs.find((l) => l.msg === "shutting down")).toMatchObject({ signal: "SIGTERM", startingUp: true });
    expect(msgs.indexOf("shutting down")).toBeLessThan(msgs.indexOf("p11kms serving"));
    expect(msgs.at(-1)).toBe("p11kms stopped");
    const verified = verifyCli(auditFiles(join(token.dir, "audit")));
    expect(verified.report).toMatchObject({ Result: "VALID", Problems: [], Warnings: [] });
  });

  it("reloads the access key files on SIGHUP: a rotated key works at once, the old one stops; a bad file keeps the current keys", async () => {
    d = await startDaemon();
    const keyFile = join(d.token.dir, "access-key.json");
    const oldKey = d.accessKey;
    await expect(kmsClient(d).send(new GenerateRandomCommand({ NumberOfBytes: 8 }))).resolves.toMatchObject({ Plaintext: expect.anything() });

    rmSync(keyFile);
    createAccessKeyFile(keyFile, "arn:aws:iam::111122223333:root");
    const newKey = JSON.parse(readFileSync(keyFile, "utf8")) as typeof oldKey;
    d.process.kill("SIGHUP");
    const reloaded = await waitForLog(d, "AWS facade access keys reloaded");
    expect(reloaded.accessKeys).toEqual([newKey.accessKeyId]);
    expect(JSON.stringify(d.logs)).not.toContain(newKey.secretAccessKey);
    await expect(kmsClient(d, newKey).send(new GenerateRandomCommand({ NumberOfBytes: 8 }))).resolves.toMatchObject({ Plaintext: expect.anything() });
    await expect(kmsClient(d, oldKey).send(new GenerateRandomCommand({ NumberOfBytes: 8 }))).rejects.toMatchObject({ name: "UnrecognizedClientException" });

    writeFileSync(keyFile, "{ not json", { mode: 0o600 });
    d.process.kill("SIGHUP");
    const refused = await waitForLog(d, "AWS facade access keys not reloaded: the current keys stay in use");
    expect(refused.reason).toMatch(/is not valid JSON/);
    await expect(kmsClient(d, newKey).send(new GenerateRandomCommand({ NumberOfBytes: 8 }))).resolves.toMatchObject({ Plaintext: expect.anything() });
    expect(await d.stop()).toBe(0);
  });

  it("after a SIGKILL the restart checks the run's unsigned tail and signs a recovery digest: verify says VALID", async () => {
    token = createTestToken("p11kms-signals");
    const configPath = writeConfig(token);
    d = await startDaemon({ token, configPath });
    for (let i = 0; i < 3; i++) await kmsClient(d).send(new GenerateRandomCommand({ NumberOfBytes: 8 }));
    expect(await d.stop("SIGKILL")).toBe(null);
    const auditDir = join(token.dir, "audit");
    expect(verifyCli(auditFiles(auditDir)).report.Result).toBe("INCOMPLETE"); // 3 events after the start digest, unsigned
    d = await startDaemon({ token, configPath });
    expect(d.logs.find((l) => l.msg === "the previous run's unsigned audit records checked out: a recovery digest covers them")).toMatchObject({ records: 3 });
    expect(await d.stop()).toBe(0);
    d = undefined;
    const verified = verifyCli(auditFiles(auditDir));
    expect(verified.report).toMatchObject({ Result: "VALID", Problems: [], Warnings: [], Recoveries: [expect.objectContaining({ recoveredRecords: 3 })] });
  });
});
