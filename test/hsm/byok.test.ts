import { randomBytes } from "node:crypto";
import pkcs11js from "pkcs11js";
import { afterAll, describe, expect, it } from "vitest";
import { wrapKeyMaterial } from "../../src/cli/import-wrap.js";
import { keyLabel } from "../../src/hsm/objects/templates.js";
import { reconcile } from "../../src/kms/reconcile.js";
import { KmsService } from "../../src/kms/service.js";
import { MovableClock, openLifecycleService } from "../helpers/lifecycle.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";
import { INTERNAL_CALLER } from "../../src/kms/caller.js";

const token = useTestToken("byok-test");
afterAll(() => token.remove());
const clock = new MovableClock();
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code);

async function importInto(svc: KmsService, keyId: string, material: Buffer, alg = "RSAES_OAEP_SHA_1", spec = "RSA_2048", extra: object = {}) {
  const p = await svc.getParametersForImport({ keyId, wrappingAlgorithm: alg, wrappingKeySpec: spec });
  const encryptedKeyMaterial = wrapKeyMaterial(material, p.publicKey, alg);
  return svc.importKeyMaterial({ keyId, importToken: p.importToken, encryptedKeyMaterial, ...extra });
}

describe("BYOK (import key material) on a real token", () => {
  it("imports with every SHA-1 algorithm and wrapping key spec; the imported key is non-extractable", async () => {
    const t = await openLifecycleService([token], clock);
    const inspect = new TokenInspector(token);
    const unlabelled = () => inspect.secretKeys().filter((k) => !k.label.startsWith("p11kms")).length;
    const before = unlabelled();
    for (const alg of ["RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_1"]) {
      for (const spec of ["RSA_2048", "RSA_3072", "RSA_4096"]) {
        const key = await t.service.createKey({ origin: "EXTERNAL" });
        expect(key.keyState).toBe("PendingImport");
        expect(await code(t.service.encrypt({ keyId: key.keyId, plaintext: Buffer.from("x") }))).toBe("KMSInvalidStateException");
        await importInto(t.service, key.keyId, randomBytes(32), alg, spec);
        expect((await t.service.describeKey({ keyId: key.keyId })).keyState).toBe("Enabled");
        const blob = (await t.service.encrypt({ keyId: key.keyId, plaintext: Buffer.from(`${alg} ${spec}`) })).ciphertextBlob;
        expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe(`${alg} ${spec}`);
        const h = inspect.find(keyLabel(key.keyId, 1))!;
        expect(inspect.bool(h, pkcs11js.CKA_SENSITIVE)).toBe(true);
        expect(inspect.bool(h, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
        expect(inspect.bool(h, pkcs11js.CKA_TOKEN)).toBe(true);
        const wrap = inspect.wrappingKey();
        expect(inspect.rv(() => inspect.mod.C_WrapKey(inspect.session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP }, wrap, h, Buffer.alloc(64)))).not.toBe("ok");
        inspect.mod.C_DestroyObject(inspect.session, wrap);
        expect(inspect.rv(() => inspect.mod.C_GetAttributeValue(inspect.session, h, [{ type: pkcs11js.CKA_VALUE }]))).not.toBe("ok");
      }
    }
    // No ephemeral AES key or length probe survived the unwrap; no public half of a wrapping key either.
    expect(unlabelled()).toBe(before);
    expect(inspect.objects(pkcs11js.CKO_PUBLIC_KEY).filter((k) => k.label.startsWith("p11kms-wrap"))).toEqual([]);
    await t.close();
  }, 120_000);

  it("bounds the unexpired import parameter sets a key store holds (LimitExceededException), expired ones first", async () => {
    const t = await openLifecycleService([token], clock);
    const store = t.deps.keyStores.get(token.label)!;
    await store.destroyExpiredWrappingKeys(clock.now());
    const limited = new KmsService({ ...t.deps, maxImportParameterSets: store.outstandingWrappingKeys() + 2 }, INTERNAL_CALLER);
    const keyId = (await limited.createKey({ origin: "EXTERNAL" })).keyId;
    const params = { keyId, wrappingAlgorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_2048" };
    expect(await code(limited.getParametersForImport(params))).toBe("ok");
    expect(await code(limited.getParametersForImport(params))).toBe("ok");
    expect(await code(limited.getParametersForImport(params))).toBe("LimitExceededException");
    clock.advanceDays(1.01); // every set made so far expires and is destroyed before the next one is counted
    expect(await code(limited.getParametersForImport(params))).toBe("ok");
    expect(store.outstandingWrappingKeys()).toBe(1);
    await t.close();
  }, 60_000);

  it("refuses RSAES_PKCS1_V1_5, unknown wrapping key specs and keys that are not EXTERNAL", async () => {
    const t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    expect(await code(t.service.getParametersForImport({ keyId, wrappingAlgorithm: "RSAES_PKCS1_V1_5", wrappingKeySpec: "RSA_2048" }))).toBe("ValidationException");
    expect(await code(t.service.getParametersForImport({ keyId, wrappingAlgorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_1024" }))).toBe("ValidationException");
    const generated = (await t.service.createKey({})).keyId;
    expect(await code(t.service.getParametersForImport({ keyId: generated, wrappingAlgorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_2048" }))).toBe("UnsupportedOperationException");
    await t.close();
  });

  it("rejects material that is not 256 bits, or does not unwrap, leaving the key PendingImport and nothing in the token", async () => {
    const t = await openLifecycleService([token], clock);
    const inspect = new TokenInspector(token);
    const unlabelled = () => inspect.secretKeys().filter((k) => !k.label.startsWith("p11kms")).length;
    const before = unlabelled();
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    for (const alg of ["RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_1"]) {
      for (const size of [16, 24, 33]) {
        expect(await code(importInto(t.service, keyId, randomBytes(size), alg))).toBe("IncorrectKeyMaterialException");
      }
      const p = await t.service.getParametersForImport({ keyId, wrappingAlgorithm: alg, wrappingKeySpec: "RSA_2048" });
      const wrapped = wrapKeyMaterial(randomBytes(32), p.publicKey, alg);
      wrapped[wrapped.length - 3]! ^= 1;
      expect(await code(t.service.importKeyMaterial({ keyId, importToken: p.importToken, encryptedKeyMaterial: wrapped }))).toBe("InvalidCiphertextException");
    }
    expect((await t.service.describeKey({ keyId })).keyState).toBe("PendingImport");
    expect(inspect.find(keyLabel(keyId, 1))).toBeUndefined();
    expect(unlabelled()).toBe(before);
    await t.close();
  });

  it("refuses tampered, forged, foreign and expired import tokens", async () => {
    const t = await openLifecycleService([token], clock);
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    const other = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    const p = await t.service.getParametersForImport({ keyId, wrappingAlgorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_2048" });
    const encryptedKeyMaterial = wrapKeyMaterial(randomBytes(32), p.publicKey, "RSAES_OAEP_SHA_1");
    const tampered = Buffer.from(p.importToken);
    tampered[10]! ^= 1;
    const imp = (importToken: Buffer, id = keyId) => code(t.service.importKeyMaterial({ keyId: id, importToken, encryptedKeyMaterial }));
    expect(await imp(tampered)).toBe("InvalidImportTokenException");
    expect(await imp(randomBytes(80))).toBe("InvalidImportTokenException");
    expect(await imp(Buffer.concat([p.importToken.subarray(0, -32), randomBytes(32)]))).toBe("InvalidImportTokenException");
    expect(await imp(p.importToken, other)).toBe("InvalidImportTokenException");
    expect(p.parametersValidTo.getTime() - clock.now().getTime()).toBe(24 * 3_600_000);
    clock.ms += 24 * 3_600_000;
    expect(await imp(p.importToken)).toBe("ExpiredImportTokenException");
    clock.ms -= 24 * 3_600_000;
    expect(await imp(p.importToken)).toBe("ok");
    await t.close();
  });

  it("re-imports the same material after deletion (old ciphertexts decrypt again) and refuses different material", async () => {
    const t = await openLifecycleService([token], clock);
    const inspect = new TokenInspector(token);
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    const material = randomBytes(32);
    await importInto(t.service, keyId, material);
    const blob = (await t.service.encrypt({ keyId, plaintext: Buffer.from("kept") })).ciphertextBlob;
    await t.service.deleteImportedKeyMaterial({ keyId });
    expect((await t.service.describeKey({ keyId })).keyState).toBe("PendingImport");
    expect(inspect.find(keyLabel(keyId, 1))).toBeUndefined();
    expect(await code(t.service.decrypt({ ciphertextBlob: blob }))).toBe("KMSInvalidStateException");
    expect(await code(importInto(t.service, keyId, randomBytes(32), "RSA_AES_KEY_WRAP_SHA_1"))).toBe("IncorrectKeyMaterialException");
    expect(inspect.find(keyLabel(keyId, 1))).toBeUndefined();
    await importInto(t.service, keyId, material, "RSA_AES_KEY_WRAP_SHA_1");
    expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("kept");
    expect(await code(importInto(t.service, keyId, material))).toBe("ok"); // over present material: same material only
    expect(await code(importInto(t.service, keyId, randomBytes(32)))).toBe("IncorrectKeyMaterialException");
    expect(await code(t.service.enableKeyRotation({ keyId }))).toBe("UnsupportedOperationException");
    await t.close();
  });

  it("destroys material at ValidTo (durable across a restart) and the key returns to PendingImport", async () => {
    let t = await openLifecycleService([token], clock);
    const inspect = new TokenInspector(token);
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    const validTo = new Date(clock.now().getTime() + 86_400_000);
    await importInto(t.service, keyId, randomBytes(32), "RSAES_OAEP_SHA_1", "RSA_2048", { expirationModel: "KEY_MATERIAL_EXPIRES", validTo });
    expect((await t.jobs.tick()).expired).toEqual([]);
    const described = await t.service.describeKey({ keyId });
    expect(described.expirationModel).toBe("KEY_MATERIAL_EXPIRES");
    expect(described.validTo).toEqual(validTo);
    await t.close();
    clock.advanceDays(2);
    t = await openLifecycleService([token], clock);
    expect((await t.jobs.tick()).expired).toEqual([keyId]);
    expect((await t.service.describeKey({ keyId })).keyState).toBe("PendingImport");
    expect(inspect.find(keyLabel(keyId, 1))).toBeUndefined();
    // Wrapping keys of expired parameters are gone too.
    expect(inspect.objects(pkcs11js.CKO_PRIVATE_KEY).filter((k) => k.label.startsWith("p11kms-wrap:"))).toEqual([]);
    expect(await code(importInto(t.service, keyId, randomBytes(32), "RSAES_OAEP_SHA_1", "RSA_2048", { expirationModel: "KEY_MATERIAL_EXPIRES" }))).toBe("ValidationException");
    await t.close();
  });

  it("start-up reconciliation destroys material a crash left under a PendingImport key, and leaves the key PendingImport", async () => {
    const t = await openLifecycleService([token], clock);
    const inspect = new TokenInspector(token);
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    const empty = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    await importInto(t.service, keyId, randomBytes(32));
    // A crash between "state → PendingImport" and "destroy the object" (expiry or deletion).
    expect(await t.metadata.removeMaterial(keyId, "Enabled")).toBe(true);
    expect(inspect.find(keyLabel(keyId, 1))).toBeDefined();
    const quiet = { warn: () => undefined, error: () => undefined };
    const report = await reconcile(t.metadata, t.deps.keyStores, quiet);
    expect(report.missingMaterial).not.toContain(empty);
    expect(report.quarantined).toEqual([]);
    expect(inspect.find(keyLabel(keyId, 1))).toBeUndefined();
    expect((await t.service.describeKey({ keyId })).keyState).toBe("PendingImport");
    expect((await t.service.describeKey({ keyId: empty })).keyState).toBe("PendingImport");
    await t.close();
  });
});
