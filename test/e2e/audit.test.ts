import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DecryptCommand, DescribeKeyCommand, EncryptCommand, GenerateDataKeyCommand, ListAliasesCommand, type KMSClient } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import * as pb from "../../src/gen/p11kms/v1/kms.js";
import type { KeyManagementServiceClient } from "../../src/gen/p11kms/v1/kms.js";
import { createAccessKeyFile } from "../../src/cli/access-key-file.js";
import { auditEvents, auditFiles, verifyCli } from "../helpers/audit.js";
import { kmsClient, rawCall } from "../helpers/aws.js";
import { CLI, client, type DaemonHandle, REPO, rpc, rpcError, startDaemon, writeConfig } from "../helpers/daemon.js";
import { createTestToken } from "../helpers/softhsm.js";

// ListAliases: one call per 2 s per caller, so the second of two quick calls is always throttled.
const CONFIG = `quotas:
  enabled: true
  burstSeconds: 2
  operations:
    ListAliases: 0.5
`;

/** The e2e access key and plaintext gRPC callers act as the account's administrator (test/helpers/daemon.ts). */
const ADMIN = "arn:aws:iam::111122223333:root";

let d: DaemonHandle;
let c: KeyManagementServiceClient;
let aws: KMSClient;
let auditDir: string;
let other: { accessKeyId: string; secretAccessKey: string };

beforeAll(async () => {
  const token = createTestToken("p11kms-audit");
  const path = writeConfig(token, CONFIG);
  // A second access key acting as a principal no key policy names: its calls are denied.
  createAccessKeyFile(join(token.dir, "other-key.json"), "arn:aws:iam::111122223333:user/mallory");
  other = JSON.parse(readFileSync(join(token.dir, "other-key.json"), "utf8")) as typeof other;
  writeFileSync(path, readFileSync(path, "utf8").replace("accessKeyFiles: [access-key.json]", "accessKeyFiles: [access-key.json, other-key.json]"));
  d = await startDaemon({ token, configPath: path });
  c = client(d.endpoint);
  aws = kmsClient(d);
  auditDir = join(token.dir, "audit");
});
afterAll(async () => {
  c?.close();
  aws?.destroy();
  await d?.stop();
  d?.token.remove();
});

const strip = (e: Record<string, unknown>) => {
  const { eventID: _i, eventTime: _t, requestID: _r, userIdentity: _u, sourceIPAddress: _s, userAgent: _a, auditChain: _c, ...rest } = e;
  return rest;
};

describe("audit log", () => {
  it("records one event per request on both APIs, failures included, with no secret in it; verify accepts the log", async () => {
    const secrets: Buffer[] = [];
    let requests = 0;
    const count = async <T>(p: Promise<T>) => {
      requests++;
      return p;
    };
    const countFail = async (p: Promise<unknown>) => {
      requests++;
      await p.then(
        () => {
          throw new Error("expected a failure");
        },
        () => undefined,
      );
    };

    const key = (await count(rpc(c, c.createKey, pb.CreateKeyRequest.fromPartial({ description: "audited" })))) as { keyMetadata?: { keyId: string } };
    const keyId = key.keyMetadata!.keyId;
    const mac = (await count(rpc(c, c.createKey, pb.CreateKeyRequest.fromPartial({ keyUsage: "GENERATE_VERIFY_MAC", keySpec: "HMAC_256" })))) as { keyMetadata?: { keyId: string } };
    const ecc = (await count(rpc(c, c.createKey, pb.CreateKeyRequest.fromPartial({ keyUsage: "SIGN_VERIFY", keySpec: "ECC_NIST_P256" })))) as { keyMetadata?: { keyId: string } };

    // gRPC: successes carrying secrets, then validation, not found, throttled.
    const p1 = randomBytes(48);
    secrets.push(p1);
    const enc = (await count(rpc(c, c.encrypt, pb.EncryptRequest.fromPartial({ keyId, plaintext: p1, encryptionContext: new Map([["purpose", "audit-test"]]) })))) as { ciphertextBlob: Buffer };
    const dec = (await count(rpc(c, c.decrypt, pb.DecryptRequest.fromPartial({ ciphertextBlob: enc.ciphertextBlob, encryptionContext: new Map([["purpose", "audit-test"]]) })))) as { plaintext: Buffer };
    expect(Buffer.from(dec.plaintext)).toEqual(p1);
    const gdk = (await count(rpc(c, c.generateDataKey, pb.GenerateDataKeyRequest.fromPartial({ keyId, numberOfBytes: 32 })))) as { plaintext: Buffer };
    secrets.push(Buffer.from(gdk.plaintext));
    const msg = randomBytes(40);
    secrets.push(msg);
    const sig = (await count(rpc(c, c.sign, pb.SignRequest.fromPartial({ keyId: ecc.keyMetadata!.keyId, message: msg, messageType: "RAW", signingAlgorithm: "ECDSA_SHA_256" })))) as { signature: Buffer };
    const macMsg = randomBytes(33);
    secrets.push(macMsg);
    const tag = (await count(rpc(c, c.generateMac, pb.GenerateMacRequest.fromPartial({ keyId: mac.keyMetadata!.keyId, message: macMsg, macAlgorithm: "HMAC_SHA_256" })))) as { mac: Buffer };
    secrets.push(Buffer.from(sig.signature), Buffer.from(tag.mac));
    const random = (await count(rpc(c, c.generateRandom, pb.GenerateRandomRequest.fromPartial({ numberOfBytes: 24 })))) as { plaintext: Buffer };
    secrets.push(Buffer.from(random.plaintext));
    await countFail(rpc(c, c.encrypt, pb.EncryptRequest.fromPartial({ keyId }))); // ValidationException: no plaintext
    await countFail(rpc(c, c.describeKey, pb.DescribeKeyRequest.fromPartial({ keyId: randomUUID() }))); // NotFoundException
    // Two ListAliases in a row: the bucket holds one call, so the second is always throttled.
    const throttled = async (calls: (() => Promise<unknown>)[]) => {
      const out = [];
      for (const call of calls) out.push(await count(call().then(() => "ok", (e: { name?: string; metadata?: { get(k: string): unknown[] } }) => e.metadata?.get("x-kms-error-type")[0] ?? e.name)));
      expect(out.at(-1)).toBe("ThrottlingException");
    };
    await throttled([() => rpc(c, c.listAliases, pb.ListAliasesRequest.fromPartial({})), () => rpc(c, c.listAliases, pb.ListAliasesRequest.fromPartial({}))]);

    // AWS: the same kinds of calls, and what only the facade refuses (signature, unknown operation).
    const p2 = randomBytes(40);
    secrets.push(p2);
    const e2 = await count(aws.send(new EncryptCommand({ KeyId: keyId, Plaintext: p2 })));
    await count(aws.send(new DecryptCommand({ CiphertextBlob: e2.CiphertextBlob })));
    const g2 = await count(aws.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_256" })));
    secrets.push(Buffer.from(g2.Plaintext!));
    await countFail(aws.send(new EncryptCommand({ KeyId: keyId, Plaintext: new Uint8Array(0) })));
    await countFail(aws.send(new DescribeKeyCommand({ KeyId: randomUUID() })));
    await throttled([() => aws.send(new ListAliasesCommand({})), () => aws.send(new ListAliasesCommand({}))]);
    const denied = kmsClient(d, other);
    await countFail(denied.send(new EncryptCommand({ KeyId: keyId, Plaintext: p2 })));
    denied.destroy();
    const badSig = await count(rawCall(d, { target: "TrentService.Encrypt", body: JSON.stringify({ KeyId: keyId, Plaintext: p2.toString("base64") }), secretAccessKey: "wrong".repeat(8) }));
    expect(badSig.status).toBe(400);
    expect((await count(rawCall(d, { target: "TrentService.NoSuchThing" }))).status).toBe(400);

    // Sync durability: every answered request's event is already in the file.
    const events = auditEvents(auditDir);
    expect(events).toHaveLength(requests);
    const codes = events.map((e) => e.errorCode).filter(Boolean);
    expect(codes).toEqual(
      expect.arrayContaining(["ValidationException", "NotFoundException", "ThrottlingException", "InvalidSignatureException", "UnknownOperationException"]),
    );
    expect(events.find((e) => e.errorCode === "AccessDeniedException")).toMatchObject({
      eventName: "Encrypt",
      userIdentity: { principalId: "arn:aws:iam::111122223333:user/mallory", authMethod: "sigv4", api: "aws" },
      requestParameters: { keyId },
    });
    const authFailure = events.find((e) => e.errorCode === "InvalidSignatureException")!;
    expect(authFailure).toMatchObject({ eventName: "Encrypt", userIdentity: { principalId: "unauthenticated", authMethod: "sigv4", api: "aws" }, requestParameters: null });
    const encrypt = events.find((e) => e.eventName === "Encrypt" && !e.errorCode)!;
    expect(encrypt).toMatchObject({
      eventVersion: "1.11",
      eventSource: "p11kms",
      userIdentity: { type: "p11kms", principalId: ADMIN, authMethod: "insecure", api: "grpc" },
      sourceIPAddress: "127.0.0.1",
      requestParameters: { keyId, encryptionContext: { purpose: "audit-test" } },
      responseElements: { keyId: `arn:aws:kms:us-east-1:111122223333:key/${keyId}`, encryptionAlgorithm: "SYMMETRIC_DEFAULT" },
      readOnly: true,
      resources: [{ accountId: "111122223333", type: "AWS::KMS::Key", ARN: `arn:aws:kms:us-east-1:111122223333:key/${keyId}` }],
      additionalEventData: { backingKeys: [{ keyArn: `arn:aws:kms:us-east-1:111122223333:key/${keyId}`, version: 1 }] },
    });

    // No secret in any form, in any file.
    const text = auditFiles(auditDir)
      .map((f) => readFileSync(f, "utf8"))
      .join("\n");
    for (const s of secrets) {
      for (const form of [s.toString("base64"), s.toString("hex"), s.toString("base64url"), s.toString("latin1")]) {
        expect(text.includes(form), `secret found in the audit log (${form.slice(0, 12)}...)`).toBe(false);
      }
    }
    expect(text).not.toContain(d.accessKey.secretAccessKey);

    const live = verifyCli(auditFiles(auditDir));
    expect(live.report.Problems).toEqual([]);
    expect(live.report.Result).toBe("INCOMPLETE"); // still running: no shutdown digest yet
    expect(live.status).toBe(2);
  });

  it("produces the same event for the same call on gRPC and on the AWS facade", async () => {
    const { keyMetadata } = (await rpc(c, c.createKey, pb.CreateKeyRequest.fromPartial({}))) as { keyMetadata?: { keyId: string } };
    const keyId = keyMetadata!.keyId;
    const context = { app: "parity", tenant: "t1" };
    const before = auditEvents(auditDir).length;
    await rpc(c, c.encrypt, pb.EncryptRequest.fromPartial({ keyId, plaintext: Buffer.from("same"), encryptionContext: new Map(Object.entries(context)) }));
    await aws.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("same"), EncryptionContext: context }));
    await rpcError(c, c.describeKey, pb.DescribeKeyRequest.fromPartial({ keyId: "alias/nothing-here" }));
    await aws.send(new DescribeKeyCommand({ KeyId: "alias/nothing-here" })).catch(() => undefined);
    await rpcError(c, c.encrypt, pb.EncryptRequest.fromPartial({ keyId, plaintext: Buffer.alloc(0), encryptionAlgorithm: "RSAES_OAEP_SHA_1" }));
    await aws.send(new EncryptCommand({ KeyId: keyId, Plaintext: new Uint8Array(0), EncryptionAlgorithm: "RSAES_OAEP_SHA_1" })).catch(() => undefined);
    const [g1, a1, g2, a2, g3, a3] = auditEvents(auditDir).slice(before);
    expect(strip(a1!)).toEqual(strip(g1!));
    expect(strip(a2!)).toEqual(strip(g2!));
    expect(strip(a3!)).toEqual(strip(g3!));
    expect(g2).toMatchObject({ errorCode: "NotFoundException", requestParameters: { keyId: "alias/nothing-here" } });
    expect(a1!.userIdentity).toMatchObject({ api: "aws", authMethod: "sigv4", principalId: ADMIN });
    expect(g1!.userIdentity).toMatchObject({ api: "grpc", authMethod: "insecure", principalId: ADMIN });
  });

  it("streams matching events to WatchAuditEvents subscribers (filter by event name and key)", async () => {
    const mk = async () => ((await rpc(c, c.createKey, pb.CreateKeyRequest.fromPartial({}))).keyMetadata!).keyId;
    const [a, b] = [await mk(), await mk()];
    const stream = c.watchAuditEvents(pb.WatchAuditEventsRequest.fromPartial({ eventNames: ["DisableKey", "ScheduleKeyDeletion"], keyIds: [a] }));
    const got: pb.WatchAuditEventsResponse[] = [];
    stream.on("data", (m: pb.WatchAuditEventsResponse) => got.push(m));
    stream.on("error", () => undefined);
    await new Promise((res) => stream.once("metadata", res));
    await rpc(c, c.disableKey, pb.DisableKeyRequest.fromPartial({ keyId: b }));
    await rpc(c, c.encrypt, pb.EncryptRequest.fromPartial({ keyId: a, plaintext: Buffer.from("x") }));
    await rpc(c, c.disableKey, pb.DisableKeyRequest.fromPartial({ keyId: a }));
    await rpc(c, c.scheduleKeyDeletion, pb.ScheduleKeyDeletionRequest.fromPartial({ keyId: `arn:aws:kms:us-east-1:111122223333:key/${a}`, pendingWindowInDays: 7 }));
    await rpcError(c, c.encrypt, pb.EncryptRequest.fromPartial({ keyId: a, plaintext: Buffer.from("x") })); // pending deletion: not an event name asked for
    await vi.waitFor(() => expect(got).toHaveLength(2), { timeout: 10_000 });
    stream.cancel();
    expect(got.map((m) => m.eventName)).toEqual(["DisableKey", "ScheduleKeyDeletion"]);
    const events = got.map((m) => JSON.parse(m.eventJson) as Record<string, unknown>);
    expect(events[1]).toMatchObject({ responseElements: { keyState: "PendingDeletion", pendingWindowInDays: 7 } });
    for (const e of events) expect(e.resources).toEqual([expect.objectContaining({ ARN: `arn:aws:kms:us-east-1:111122223333:key/${a}` })]);
    expect(got.every((m) => m.lostEvents === 0)).toBe(true);
    // Opening the stream is itself an audited request.
    expect(auditEvents(auditDir).filter((e) => e.eventName === "WatchAuditEvents").at(-1)).toMatchObject({
      requestParameters: { eventNames: ["DisableKey", "ScheduleKeyDeletion"], keyIds: [a] },
    });
  });

  it("p11kms audit watch prints matching events as JSON lines until interrupted", async () => {
    const keyId = (await rpc(c, c.createKey, pb.CreateKeyRequest.fromPartial({}))).keyMetadata!.keyId;
    const child = spawn(process.execPath, [CLI, "--endpoint", d.endpoint, "audit", "watch", "--event-name", "EnableKey", "--key-id", keyId], { cwd: REPO });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((res) => child.once("exit", (code) => res(code)));
    // The watcher subscribes asynchronously: repeat the (idempotent) call until it shows up.
    await vi.waitFor(
      async () => {
        await rpc(c, c.enableKey, pb.EnableKeyRequest.fromPartial({ keyId }));
        expect(out).toContain("\n");
      },
      { timeout: 15_000, interval: 200 },
    );
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    const first = JSON.parse(out.split("\n")[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ eventName: "EnableKey", requestParameters: { keyId } });
    expect(first).not.toHaveProperty("auditChain");
  });

  it("ends with a shutdown digest on a clean stop (verify: VALID), continues the chain after a restart, audits the reaper", async () => {
    const doomed = (await rpc(c, c.createKey, pb.CreateKeyRequest.fromPartial({}))).keyMetadata!.keyId;
    await rpc(c, c.scheduleKeyDeletion, pb.ScheduleKeyDeletionRequest.fromPartial({ keyId: doomed, pendingWindowInDays: 7 }));
    c.close();
    expect(await d.stop()).toBe(0);
    const stopped = verifyCli(auditFiles(auditDir));
    expect(stopped.report).toMatchObject({ Result: "VALID", Problems: [], Warnings: [] });
    expect(stopped.status).toBe(0);
    // Eight days later: the reaper deletes the key at start-up, an internal action with an event of its own.
    d = await startDaemon({ token: d.token, configPath: d.configPath, env: { P11KMS_TEST_CLOCK_OFFSET_MS: String(8 * 86_400_000) } });
    const deletions = auditEvents(auditDir).filter((e) => e.eventName === "DeleteKey");
    expect(deletions).toHaveLength(2); // this key, and the one the watch test scheduled
    expect(deletions.find((e) => (e.requestParameters as { keyId: string }).keyId === doomed)).toMatchObject({
      userIdentity: { principalId: "internal", authMethod: "internal", api: "internal" },
      requestParameters: { keyId: doomed },
      resources: [expect.objectContaining({ ARN: `arn:aws:kms:us-east-1:111122223333:key/${doomed}` })],
      readOnly: false,
    });
    c = client(d.endpoint);
    await rpc(c, c.generateRandom, pb.GenerateRandomRequest.fromPartial({ numberOfBytes: 8 }));
    c.close();
    expect(await d.stop()).toBe(0);
    const again = verifyCli(auditFiles(auditDir));
    expect(again.report).toMatchObject({ Result: "VALID", Problems: [], Warnings: [] });
    // Tampering with the stopped log is caught by the CLI too (exit 1), with the position.
    const live = auditFiles(auditDir).at(-1)!;
    const lines = readFileSync(live, "utf8").split("\n");
    lines.splice(5, 1);
    writeFileSync(live, lines.join("\n"));
    const tampered = verifyCli(auditFiles(auditDir));
    expect(tampered.status).toBe(1);
    expect(tampered.report.Result).toBe("TAMPERED");
    expect(JSON.stringify(tampered.report.Problems)).toMatch(/"kind":"deleted".*"line":6/);
  });
});

