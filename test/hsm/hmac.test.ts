import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pkcs11js from "pkcs11js";
import { Device } from "../../src/hsm/runtime/device.js";
import { HmacOps } from "../../src/hsm/ops/hmac.js";
import { KeyObjectCache } from "../../src/hsm/runtime/key-objects.js";
import { SessionPool } from "../../src/hsm/runtime/session-pool.js";
import type { KmsService } from "../../src/kms/service.js";
import { TokenInspector } from "../helpers/token-objects.js";
import { openService, type TestService } from "../helpers/service.js";
import { useTestToken } from "../helpers/softhsm.js";

const token = useTestToken("hmac");
let t: TestService;
let svc: KmsService;
const SPECS = [
  ["HMAC_224", "HMAC_SHA_224", 28],
  ["HMAC_256", "HMAC_SHA_256", 32],
  ["HMAC_384", "HMAC_SHA_384", 48],
  ["HMAC_512", "HMAC_SHA_512", 64],
] as const;
const keys = new Map<string, string>();

beforeAll(async () => {
  t = openService(token);
  svc = t.service;
  for (const [spec] of SPECS) keys.set(spec, (await svc.createKey({ keySpec: spec, keyUsage: "GENERATE_VERIFY_MAC" })).keyId);
});
afterAll(async () => {
  await t.metadata.close();
  await t.store.close();
  token.remove();
});

const code = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: { code?: string }) => e.code,
  );

describe("GenerateMac / VerifyMac", () => {
  it.each(SPECS)("%s: deterministic %s MACs of the right length that VerifyMac accepts", async (spec, alg, len) => {
    const keyId = keys.get(spec);
    for (const message of [Buffer.from("a"), Buffer.alloc(4096, 7)]) {
      const a = await svc.generateMac({ keyId, message, macAlgorithm: alg });
      const b = await svc.generateMac({ keyId, message, macAlgorithm: alg });
      expect(a.mac.length).toBe(len);
      expect(a.mac.equals(b.mac)).toBe(true);
      expect(a.macAlgorithm).toBe(alg);
      expect((await svc.verifyMac({ keyId, message, mac: a.mac, macAlgorithm: alg })).macValid).toBe(true);
    }
  });

  it("keys differ: the same message gives different MACs under different keys", async () => {
    const other = (await svc.createKey({ keySpec: "HMAC_256", keyUsage: "GENERATE_VERIFY_MAC" })).keyId;
    const m = Buffer.from("same message");
    const a = await svc.generateMac({ keyId: keys.get("HMAC_256"), message: m, macAlgorithm: "HMAC_SHA_256" });
    const b = await svc.generateMac({ keyId: other, message: m, macAlgorithm: "HMAC_SHA_256" });
    expect(a.mac.equals(b.mac)).toBe(false);
  });

  it("is HMAC as node:crypto computes it, both ways (the device code path, on a key whose value the test knows)", async () => {
    // KMS keys never leave the token, so the known-answer check gives the same code path (HmacOps on a
    // Device and a session pool) an HMAC object made from a known value, visible to every session.
    const inspect = new TokenInspector(token);
    const slot = inspect.mod.C_GetSlotList(true).find((s) => inspect.mod.C_GetTokenInfo(s).label.trim() === token.label)!;
    const objects = new KeyObjectCache();
    const pool = new SessionPool(inspect.mod, slot, pkcs11js.CKF_SERIAL_SESSION, 2);
    const ops = new HmacOps(new Device(inspect.mod, pool), objects);
    const value = Buffer.from("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    for (const [spec, alg, len] of SPECS) {
      const ref = { keyId: "55555555-5555-4555-8555-555555555555", version: len };
      objects.set(ref, {
        secret: inspect.mod.C_CreateObject(inspect.session, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
          { type: pkcs11js.CKA_TOKEN, value: false },
          { type: pkcs11js.CKA_SIGN, value: true },
          { type: pkcs11js.CKA_VERIFY, value: true },
          { type: pkcs11js.CKA_VALUE, value: value.subarray(0, len) },
        ]),
      });
      const expected = createHmac(`sha${alg.slice(-3)}`, value.subarray(0, len)).update("known answer").digest();
      expect({ spec, mac: (await ops.generateMac(ref, alg, Buffer.from("known answer"))).toString("hex") }).toEqual({ spec, mac: expected.toString("hex") });
      expect(await ops.verifyMac(ref, alg, Buffer.from("known answer"), expected)).toBe(true);
      expect(await ops.verifyMac(ref, alg, Buffer.from("known answeR"), expected)).toBe(false);
    }
    pool.close();
  });
});

describe("MAC bad input", () => {
  it("a wrong MAC is KMSInvalidMacException, whatever is wrong with it", async () => {
    const keyId = keys.get("HMAC_256");
    const message = Buffer.from("mac me");
    const { mac } = await svc.generateMac({ keyId, message, macAlgorithm: "HMAC_SHA_256" });
    const flipped = Buffer.from(mac);
    flipped[31]! ^= 1;
    for (const bad of [flipped, mac.subarray(0, 31), Buffer.concat([mac, Buffer.from([0])]), Buffer.alloc(32), Buffer.alloc(6144, 1)]) {
      expect(await code(svc.verifyMac({ keyId, message, mac: bad, macAlgorithm: "HMAC_SHA_256" }))).toBe("KMSInvalidMacException");
    }
    expect(await code(svc.verifyMac({ keyId, message: Buffer.from("mac mE"), mac, macAlgorithm: "HMAC_SHA_256" }))).toBe("KMSInvalidMacException");
    // Another key's MAC of the same message does not verify either.
    const foreign = await svc.generateMac({ keyId: keys.get("HMAC_512"), message, macAlgorithm: "HMAC_SHA_512" });
    expect(await code(svc.verifyMac({ keyId, message, mac: foreign.mac.subarray(0, 32), macAlgorithm: "HMAC_SHA_256" }))).toBe("KMSInvalidMacException");
  });

  it("names the AWS error for each mistake", async () => {
    const h256 = keys.get("HMAC_256")!;
    const aes = (await svc.createKey({})).keyId;
    const ec = (await svc.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    const m = Buffer.from("x");
    const cases: [string, Promise<unknown>, string][] = [
      ["algorithm of another HMAC size", svc.generateMac({ keyId: h256, message: m, macAlgorithm: "HMAC_SHA_384" }), "InvalidKeyUsageException"],
      ["unknown algorithm", svc.generateMac({ keyId: h256, message: m, macAlgorithm: "HMAC_MD5" }), "ValidationException"],
      ["no algorithm", svc.generateMac({ keyId: h256, message: m }), "ValidationException"],
      ["4097-byte message", svc.generateMac({ keyId: h256, message: Buffer.alloc(4097), macAlgorithm: "HMAC_SHA_256" }), "ValidationException"],
      ["empty message", svc.generateMac({ keyId: h256, message: Buffer.alloc(0), macAlgorithm: "HMAC_SHA_256" }), "ValidationException"],
      ["empty MAC", svc.verifyMac({ keyId: h256, message: m, mac: Buffer.alloc(0), macAlgorithm: "HMAC_SHA_256" }), "ValidationException"],
      ["6145-byte MAC", svc.verifyMac({ keyId: h256, message: m, mac: Buffer.alloc(6145), macAlgorithm: "HMAC_SHA_256" }), "ValidationException"],
      ["a symmetric encryption key", svc.generateMac({ keyId: aes, message: m, macAlgorithm: "HMAC_SHA_256" }), "InvalidKeyUsageException"],
      ["a signing key", svc.generateMac({ keyId: ec, message: m, macAlgorithm: "HMAC_SHA_256" }), "InvalidKeyUsageException"],
      ["an HMAC key to encrypt", svc.encrypt({ keyId: h256, plaintext: m }), "InvalidKeyUsageException"],
      ["an HMAC key to sign", svc.sign({ keyId: h256, message: m, signingAlgorithm: "ECDSA_SHA_256" }), "InvalidKeyUsageException"],
      ["DryRun", svc.generateMac({ keyId: h256, message: m, macAlgorithm: "HMAC_SHA_256", dryRun: true }), "DryRunOperationException"],
    ];
    for (const [name, p, want] of cases) expect({ name, got: await code(p) }).toEqual({ name, got: want });
  });

  it("refuses a disabled key", async () => {
    const keyId = (await svc.createKey({ keySpec: "HMAC_384", keyUsage: "GENERATE_VERIFY_MAC" })).keyId;
    const { mac } = await svc.generateMac({ keyId, message: Buffer.from("m"), macAlgorithm: "HMAC_SHA_384" });
    await t.metadata.updateKeyState(keyId, "Enabled", "Disabled");
    expect(await code(svc.generateMac({ keyId, message: Buffer.from("m"), macAlgorithm: "HMAC_SHA_384" }))).toBe("DisabledException");
    expect(await code(svc.verifyMac({ keyId, message: Buffer.from("m"), mac, macAlgorithm: "HMAC_SHA_384" }))).toBe("DisabledException");
  });
});
