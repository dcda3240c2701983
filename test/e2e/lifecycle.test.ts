import { execFile } from "node:child_process";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ServiceError } from "@grpc/grpc-js";
import { afterAll, describe, expect, it } from "vitest";
import { CreateKeyRequest, DecryptRequest, EncryptRequest, ListKeysRequest } from "../../src/gen/p11kms/v1/kms.js";
import { CLI, client, rpc, startDaemon, writeConfig } from "../helpers/daemon.js";
import { createTestToken, type TestToken } from "../helpers/softhsm.js";

const run = promisify(execFile);
const tokens: TestToken[] = [];
afterAll(() => tokens.forEach((t) => t.remove()));

describe("daemon lifecycle", () => {
  it("keeps keys across a restart, and old blobs still decrypt", async () => {
    const first = await startDaemon();
    tokens.push(first.token);
    let c = client(first.endpoint);
    const keyId = (await rpc(c, c.createKey, CreateKeyRequest.fromPartial({ description: "durable" }))).keyMetadata!.keyId;
    const blob = (await rpc(c, c.encrypt, EncryptRequest.fromPartial({ keyId, plaintext: Buffer.from("survives"), encryptionContext: new Map([["a", "1"]]) }))).ciphertextBlob;
    c.close();
    expect(await first.stop()).toBe(0);
    expect(first.logs.some((l) => l.msg === "p11kms stopped")).toBe(true);

    const second = await startDaemon({ token: first.token, configPath: first.configPath });
    c = client(second.endpoint);
    const keys = (await rpc(c, c.listKeys, ListKeysRequest.fromPartial({}))).keys.map((k) => k.keyId);
    expect(keys).toEqual([keyId]);
    const plain = await rpc(c, c.decrypt, DecryptRequest.fromPartial({ ciphertextBlob: blob, encryptionContext: new Map([["a", "1"]]) }));
    expect(plain.plaintext.toString()).toBe("survives");
    c.close();
    expect(await second.stop("SIGINT")).toBe(0);
  });

  it("drains in-flight calls on SIGTERM: each call succeeds or is refused as UNAVAILABLE", async () => {
    const d = await startDaemon();
    tokens.push(d.token);
    const c = client(d.endpoint);
    const keyId = (await rpc(c, c.createKey, CreateKeyRequest.fromPartial({}))).keyMetadata!.keyId;
    const calls = Array.from({ length: 200 }, () =>
      rpc(c, c.encrypt, EncryptRequest.fromPartial({ keyId, plaintext: Buffer.alloc(4096, 1) })).then(
        () => "ok",
        (e: ServiceError) => e.code,
      ),
    );
    await new Promise((r) => setTimeout(r, 5));
    const exit = d.stop();
    const outcomes = await Promise.all(calls);
    expect(await exit).toBe(0);
    expect(outcomes.filter((o) => o !== "ok" && o !== 14)).toEqual([]); // 14 = UNAVAILABLE
    expect(outcomes).toContain("ok");
    c.close();
  });

  it("refuses to start on an invalid configuration, listing every problem (exit 78)", async () => {
    const token = createTestToken("cfg-test");
    tokens.push(token);
    const path = join(token.dir, "bad.yaml");
    writeFileSync(path, "grpc:\n  listen: 0.0.0.0:50051\nkeyStores: []\nbogus: 1\n");
    const err = await run(process.execPath, [CLI, "serve", "--config", path]).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(78);
    expect(err?.stderr).toContain("keyStores: configure at least one key store");
    expect(err?.stderr).toContain("plaintext gRPC may only listen on a loopback address");
    expect(err?.stderr).toMatch(/bogus/);
  });

  it("refuses a wrong PIN and a PIN file others can read, naming the cause", async () => {
    const token = createTestToken("pin-test");
    tokens.push(token);
    const config = writeConfig(token);
    writeFileSync(join(token.dir, "pin"), "wrong-pin\n", { mode: 0o600 });
    await expect(startDaemon({ token, configPath: config })).rejects.toThrow(/CKR_PIN_INCORRECT/);
    writeFileSync(join(token.dir, "pin"), `${token.pin}\n`);
    chmodSync(join(token.dir, "pin"), 0o644);
    await expect(startDaemon({ token, configPath: config })).rejects.toThrow(/must not be readable by group or others/);
  });
});
