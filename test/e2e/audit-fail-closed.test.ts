import { renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as pb from "../../src/gen/p11kms/v1/kms.js";
import { auditEvents, auditFiles, verifyCli } from "../helpers/audit.js";
import { client, type DaemonHandle, rpc, rpcError, startDaemon, writeConfig } from "../helpers/daemon.js";
import { createTestToken } from "../helpers/softhsm.js";

// Small files: the log is rotated (closed, renamed, reopened) every few events, so a broken audit directory
// is noticed within a few requests.
const CONFIG = `audit:
  maxFileBytes: 4096
`;

let d: DaemonHandle;
let c: pb.KeyManagementServiceClient;
let dir: string;

beforeAll(async () => {
  const token = createTestToken("p11kms-audit-fc");
  const path = writeConfig(token, CONFIG);
  writeFileSync(path, (await import("node:fs")).readFileSync(path, "utf8").replace("metrics:\n  enabled: false", "metrics:\n  listen: 127.0.0.1:0"));
  d = await startDaemon({ token, configPath: path });
  c = client(d.endpoint);
  dir = join(token.dir, "audit");
});
afterAll(async () => {
  c?.close();
  await d?.stop();
  d?.token.remove();
});

describe("sync durability fails closed", () => {
  it("fails requests whose event cannot be written (KMSInternalException), acknowledges none without its event, and recovers", async () => {
    const { keyMetadata } = await rpc(c, c.createKey, pb.CreateKeyRequest.fromPartial({}));
    const encrypt = (n: number) =>
      rpc(c, c.encrypt, pb.EncryptRequest.fromPartial({ keyId: keyMetadata!.keyId, plaintext: Buffer.from("p"), encryptionContext: new Map([["n", String(n)]]) }));
    const acked: number[] = [];
    for (let n = 0; n < 3; n++) acked.push((await encrypt(n), n));

    // The audit directory is replaced by a plain file: the open file still takes writes until the next
    // rotation; from then on nothing can be written.
    renameSync(dir, `${dir}.moved`);
    writeFileSync(dir, "");
    const failures: string[] = [];
    for (let n = 3; n < 30; n++) {
      try {
        await encrypt(n);
        acked.push(n);
        expect(failures).toEqual([]); // once failing, it keeps failing
      } catch (err) {
        failures.push((err as { metadata: { get(k: string): unknown[] } }).metadata.get("x-kms-error-type")[0] as string);
      }
    }
    expect(failures.length).toBeGreaterThan(10);
    expect(new Set(failures)).toEqual(new Set(["KMSInternalException"]));
    expect((await rpcError(c, c.generateRandom, pb.GenerateRandomRequest.fromPartial({ numberOfBytes: 8 }))).type).toBe("KMSInternalException");
    expect(d.logs.some((l) => l.msg === "audit log write failed")).toBe(true);
    // The rotation that first met the broken directory is reported as such: its batch had been written.
    expect(d.logs.some((l) => String(l.msg).startsWith("audit log rotation failed"))).toBe(true);
    const metricsPort = d.logs.find((l) => l.msg === "p11kms serving")!.metricsPort as number;
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(Number(/^p11kms_audit_write_failures_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(Number(/^p11kms_audit_rotation_failures_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^p11kms_audit_backlog_events \d+/m);

    // The directory comes back: requests succeed again and the chain goes on.
    rmSync(dir);
    renameSync(`${dir}.moved`, dir);
    await encrypt(100);
    acked.push(100);
    // The file that could not be rotated is live again and over maxFileBytes, so the daemon rotates it right
    // after answering: auditEvents reads while that rename happens (it opens the live file before listing).
    const logged = new Set(auditEvents(dir).filter((e) => e.eventName === "Encrypt" && !e.errorCode).map((e) => (e.requestParameters as { encryptionContext: { n: string } }).encryptionContext.n));
    for (const n of acked) expect(logged.has(String(n)), `acknowledged request ${n} has no audit event`).toBe(true);

    c.close();
    expect(await d.stop()).toBe(0);
    const v = verifyCli(auditFiles(dir));
    expect(v.report.Problems).toEqual([]);
    expect(v.report.Result).toBe("VALID");
  });
});
