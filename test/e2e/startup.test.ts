import { createPublicKey, verify } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CreateKeyRequest, DecryptRequest, EncryptRequest, GetPublicKeyRequest, SignRequest } from "../../src/gen/p11kms/v1/kms.js";
import { client, rpc, startDaemon } from "../helpers/daemon.js";
import type { TestToken } from "../helpers/softhsm.js";

/**
 * `p11kms serve` opens its tokens in a start-up worker thread (src/hsm/prepared-open.ts) and the main thread
 * then uses the worker's object handles and sessions' login. Keys made before a restart must work after
 * it, on either path, and the log says which path was taken.
 */
const tokens: TestToken[] = [];
afterAll(() => tokens.forEach((t) => t.remove()));

describe("daemon start-up", () => {
  it("serves keys made before a restart with the worker's scan, and without it (P11KMS_NO_PREPARE=1)", async () => {
    const first = await startDaemon();
    tokens.push(first.token);
    let c = client(first.endpoint);
    const aes = (await rpc(c, c.createKey, CreateKeyRequest.fromPartial({}))).keyMetadata!.keyId;
    const ecc = (await rpc(c, c.createKey, CreateKeyRequest.fromPartial({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" }))).keyMetadata!.keyId;
    const blob = (await rpc(c, c.encrypt, EncryptRequest.fromPartial({ keyId: aes, plaintext: Buffer.from("before") }))).ciphertextBlob;
    c.close();
    expect(await first.stop()).toBe(0);

    for (const env of [{}, { P11KMS_NO_PREPARE: "1" }] as Record<string, string>[]) {
      const d = await startDaemon({ token: first.token, configPath: first.configPath, env });
      c = client(d.endpoint);
      try {
        const opened = d.logs.find((l) => l.msg === "key store opened");
        expect(opened?.prepared).toBe(!("P11KMS_NO_PREPARE" in env));
        const serving = d.logs.find((l) => l.msg === "p11kms serving");
        expect(serving?.uptimeMs).toEqual(expect.any(Number));
        expect(d.logs.find((l) => l.msg === "reconciliation finished")).toMatchObject({ quarantined: 0, missingMaterial: 0 });
        const plain = await rpc(c, c.decrypt, DecryptRequest.fromPartial({ ciphertextBlob: blob }));
        expect(plain.plaintext.toString()).toBe("before");
        const message = Buffer.from("after a restart");
        const sig = (await rpc(c, c.sign, SignRequest.fromPartial({ keyId: ecc, message, signingAlgorithm: "ECDSA_SHA_256" }))).signature;
        const spki = (await rpc(c, c.getPublicKey, GetPublicKeyRequest.fromPartial({ keyId: ecc }))).publicKey;
        expect(verify("sha256", message, createPublicKey({ key: Buffer.from(spki), format: "der", type: "spki" }), Buffer.from(sig))).toBe(true);
        // A key made after start-up lives beside the prepared handles.
        const fresh = (await rpc(c, c.createKey, CreateKeyRequest.fromPartial({}))).keyMetadata!.keyId;
        const b = (await rpc(c, c.encrypt, EncryptRequest.fromPartial({ keyId: fresh, plaintext: Buffer.from("x") }))).ciphertextBlob;
        expect((await rpc(c, c.decrypt, DecryptRequest.fromPartial({ ciphertextBlob: b }))).plaintext.toString()).toBe("x");
      } finally {
        c.close();
        expect(await d.stop()).toBe(0);
      }
    }
  });

  it("refuses to start on a wrong PIN, naming the cause (the worker's error, not a second login attempt)", async () => {
    const d = await startDaemon();
    tokens.push(d.token);
    expect(await d.stop()).toBe(0);
    writeFileSync(join(d.token.dir, "pin"), "wrong-pin", { mode: 0o600 });
    await expect(startDaemon({ token: d.token, configPath: d.configPath })).rejects.toThrow(/CKR_PIN_INCORRECT/);
  });
});
