import { constants, createHmac, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes, verify } from "node:crypto";
import pkcs11js from "pkcs11js";
import { afterAll, describe, expect, it } from "vitest";
import { wrapKeyMaterial } from "../../src/cli/import-wrap.js";
import { keyLabel } from "../../src/hsm/objects/templates.js";
import { INTERNAL_CALLER } from "../../src/kms/caller.js";
import type { LifecycleEvents } from "../../src/kms/deps.js";
import { KmsService } from "../../src/kms/service.js";
import { MovableClock, openLifecycleService } from "../helpers/lifecycle.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("byok-material");
afterAll(() => token.remove());
const clock = new MovableClock();
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code);
type Imported = Parameters<NonNullable<LifecycleEvents["materialImported"]>>[0];

/** A service over the test token that records materialImported events. */
async function open(storeOptions: { importOaepSha256Fallback?: "auto" | "allow" | "deny" } = {}) {
  const t = await openLifecycleService([token], clock, [], { storeOptions });
  const imported: Imported[] = [];
  const service = new KmsService({ ...t.deps, events: { ...t.deps.events!, materialImported: (e) => imported.push(e) } }, INTERNAL_CALLER);
  return { ...t, service, imported };
}

async function importInto(svc: KmsService, keyId: string, material: Buffer, alg: string, spec = "RSA_2048", extra: object = {}) {
  const p = await svc.getParametersForImport({ keyId, wrappingAlgorithm: alg, wrappingKeySpec: spec });
  return svc.importKeyMaterial({ keyId, importToken: p.importToken, encryptedKeyMaterial: wrapKeyMaterial(material, p.publicKey, alg), ...extra });
}

const pkcs8 = (k: { privateKey: { export(o: object): string | Buffer } }) => k.privateKey.export({ format: "der", type: "pkcs8" }) as Buffer;

describe("BYOK: every kind of material, every wrapping, on a real token", () => {
  it("imports AES-256 with the SHA-256 algorithms through the software path (SoftHSM2: auto), and records the path", async () => {
    const t = await open();
    for (const alg of ["RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256", "RSAES_OAEP_SHA_1"]) {
      for (const spec of ["RSA_2048", "RSA_3072", "RSA_4096"]) {
        const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
        await importInto(t.service, keyId, randomBytes(32), alg, spec);
        const blob = (await t.service.encrypt({ keyId, plaintext: Buffer.from(alg) })).ciphertextBlob;
        expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe(alg);
        expect(t.imported.at(-1)).toMatchObject({ keyId, wrappingAlgorithm: alg, unwrapPath: alg.endsWith("SHA_256") ? "software" : "device", reimport: false });
      }
    }
    // The software path checks what it decodes like the device path does.
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    // Its wrapping keys may only raw-RSA decrypt; the device path's may only unwrap.
    const inspect = new TokenInspector(token);
    // (By label: SoftHSM2 may hand out new handles for token objects after the token changed.)
    const mine = () => inspect.objects(pkcs11js.CKO_PRIVATE_KEY).filter((o) => o.label.startsWith(`p11kms-wrap:${keyId}:`));
    for (const [alg, unwrap] of [["RSAES_OAEP_SHA_256", false], ["RSAES_OAEP_SHA_1", true]] as const) {
      const before = mine().map((o) => o.label);
      await t.service.getParametersForImport({ keyId, wrappingAlgorithm: alg, wrappingKeySpec: "RSA_2048" });
      const h = mine().find((o) => !before.includes(o.label))?.handle;
      if (h === undefined) throw new Error("no new wrapping key");
      expect([inspect.bool(h, pkcs11js.CKA_UNWRAP), inspect.bool(h, pkcs11js.CKA_DECRYPT), inspect.bool(h, pkcs11js.CKA_EXTRACTABLE)]).toEqual([unwrap, !unwrap, false]);
    }
    for (const alg of ["RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"]) {
      expect(await code(importInto(t.service, keyId, randomBytes(24), alg))).toBe("IncorrectKeyMaterialException");
      const p = await t.service.getParametersForImport({ keyId, wrappingAlgorithm: alg, wrappingKeySpec: "RSA_2048" });
      const tampered = wrapKeyMaterial(randomBytes(32), p.publicKey, alg);
      tampered[5]! ^= 1; // inside the OAEP block
      expect(await code(t.service.importKeyMaterial({ keyId, importToken: p.importToken, encryptedKeyMaterial: tampered }))).toBe("InvalidCiphertextException");
      const sha1Wrapped = wrapKeyMaterial(randomBytes(32), p.publicKey, alg.replace("SHA_256", "SHA_1"));
      expect(await code(t.service.importKeyMaterial({ keyId, importToken: p.importToken, encryptedKeyMaterial: sha1Wrapped }))).toBe("InvalidCiphertextException");
    }
    // Empty and one-byte material on every path: a client error, never an internal one.
    for (const alg of ["RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"]) {
      for (const size of [0, 1]) {
        expect(["IncorrectKeyMaterialException", "InvalidCiphertextException"], `${alg} ${size}`).toContain(await code(importInto(t.service, keyId, randomBytes(size), alg)));
      }
    }
    expect((await t.service.describeKey({ keyId })).keyState).toBe("PendingImport");
    await t.close();
  }, 180_000);

  it("refuses the SHA-256 algorithms where importOaepSha256Fallback is deny, before anything is wrapped", async () => {
    const t = await open({ importOaepSha256Fallback: "deny" });
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    const outstanding = t.deps.keyStores.get(token.label)!.outstandingWrappingKeys();
    for (const alg of ["RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_256"]) {
      expect(await code(t.service.getParametersForImport({ keyId, wrappingAlgorithm: alg, wrappingKeySpec: "RSA_2048" }))).toBe("UnsupportedOperationException");
    }
    expect(t.deps.keyStores.get(token.label)!.outstandingWrappingKeys()).toBe(outstanding);
    await importInto(t.service, keyId, randomBytes(32), "RSA_AES_KEY_WRAP_SHA_1");
    expect(t.imported.at(-1)?.unwrapPath).toBe("device");
    await t.close();
  }, 60_000);

  it("imports HMAC material of every length AWS allows; other lengths are refused and leave nothing", async () => {
    const t = await open();
    const inspect = new TokenInspector(token);
    const ranges = { HMAC_224: [28, 64], HMAC_256: [32, 64], HMAC_384: [48, 128], HMAC_512: [64, 128] } as const;
    for (const [spec, [min, max]] of Object.entries(ranges)) {
      const hash = `sha${spec.slice(5)}`;
      for (const [length, alg] of [[min, "RSAES_OAEP_SHA_1"], [max, "RSA_AES_KEY_WRAP_SHA_256"], [min + 5, "RSA_AES_KEY_WRAP_SHA_1"]] as const) {
        const keyId = (await t.service.createKey({ origin: "EXTERNAL", keySpec: spec, keyUsage: "GENERATE_VERIFY_MAC" })).keyId;
        const material = randomBytes(length);
        await importInto(t.service, keyId, material, alg);
        const message = Buffer.from(`${spec} ${length}`);
        const { mac } = await t.service.generateMac({ keyId, message, macAlgorithm: `HMAC_SHA_${spec.slice(5)}` });
        expect(mac).toEqual(createHmac(hash, material).update(message).digest());
        const h = inspect.find(keyLabel(keyId, 1))!;
        expect(inspect.bool(h, pkcs11js.CKA_SENSITIVE)).toBe(true);
        expect(inspect.bool(h, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
      }
      const keyId = (await t.service.createKey({ origin: "EXTERNAL", keySpec: spec, keyUsage: "GENERATE_VERIFY_MAC" })).keyId;
      for (const length of [min - 1, max + 1]) {
        for (const alg of ["RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_1", "RSAES_OAEP_SHA_256"]) {
          expect(await code(importInto(t.service, keyId, randomBytes(length), alg))).toBe("IncorrectKeyMaterialException");
        }
      }
      expect(inspect.find(keyLabel(keyId, 1))).toBeUndefined();
      expect((await t.service.describeKey({ keyId })).keyState).toBe("PendingImport");
    }
    // A secret length check that creates no extractable copy: no stray secret objects on the token either.
    expect(inspect.secretKeys().filter((k) => !k.label.startsWith("p11kms"))).toEqual([]);
    await t.close();
  }, 180_000);

  it("imports RSA and EC private keys (PKCS#8): GetPublicKey gives the original public key, signatures verify with it", async () => {
    const t = await open();
    const inspect = new TokenInspector(token);
    const cases = [
      { spec: "ECC_NIST_P256", alg: "RSAES_OAEP_SHA_1", sa: "ECDSA_SHA_256", kp: () => generateKeyPairSync("ec", { namedCurve: "P-256" }) },
      { spec: "ECC_NIST_P384", alg: "RSA_AES_KEY_WRAP_SHA_256", sa: "ECDSA_SHA_384", kp: () => generateKeyPairSync("ec", { namedCurve: "P-384" }) },
      { spec: "ECC_NIST_P521", alg: "RSA_AES_KEY_WRAP_SHA_1", sa: "ECDSA_SHA_512", kp: () => generateKeyPairSync("ec", { namedCurve: "P-521" }) },
      { spec: "ECC_NIST_P521", alg: "RSAES_OAEP_SHA_256", sa: "ECDSA_SHA_512", kp: () => generateKeyPairSync("ec", { namedCurve: "P-521" }), wrap: "RSA_3072" },
      { spec: "ECC_SECG_P256K1", alg: "RSAES_OAEP_SHA_256", sa: "ECDSA_SHA_256", kp: () => generateKeyPairSync("ec", { namedCurve: "secp256k1" }) },
      { spec: "RSA_2048", alg: "RSA_AES_KEY_WRAP_SHA_1", sa: "RSASSA_PSS_SHA_256", kp: () => generateKeyPairSync("rsa", { modulusLength: 2048 }) },
      { spec: "RSA_3072", alg: "RSA_AES_KEY_WRAP_SHA_256", sa: "RSASSA_PKCS1_V1_5_SHA_384", kp: () => generateKeyPairSync("rsa", { modulusLength: 3072 }) },
    ];
    for (const c of cases) {
      const keyId = (await t.service.createKey({ origin: "EXTERNAL", keySpec: c.spec, keyUsage: "SIGN_VERIFY" })).keyId;
      const kp = c.kp();
      await importInto(t.service, keyId, pkcs8(kp), c.alg, c.wrap ?? "RSA_2048");
      const spki = kp.publicKey.export({ format: "der", type: "spki" });
      expect((await t.service.getPublicKey({ keyId })).publicKey).toEqual(spki);
      const message = Buffer.from(`${c.spec} via ${c.alg}`);
      const { signature } = await t.service.sign({ keyId, message, messageType: "RAW", signingAlgorithm: c.sa });
      const hash = `sha${c.sa.slice(-3)}`;
      const padding = c.sa.startsWith("RSASSA_PSS") ? { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : {};
      expect(verify(hash, message, { key: kp.publicKey, ...padding }, signature), `${c.spec} ${c.alg}`).toBe(true);
      expect((await t.service.verify({ keyId, message, messageType: "RAW", signingAlgorithm: c.sa, signature })).signatureValid).toBe(true);
      const priv = inspect.objects(pkcs11js.CKO_PRIVATE_KEY).find((o) => o.label === keyLabel(keyId, 1))!.handle;
      expect(inspect.bool(priv, pkcs11js.CKA_SENSITIVE)).toBe(true);
      expect(inspect.bool(priv, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
      expect(inspect.bool(priv, pkcs11js.CKA_DERIVE)).toBe(false);
    }
    // An RSA decryption key: node:crypto encrypts under the original public key, the imported key decrypts.
    const kp = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const keyId = (await t.service.createKey({ origin: "EXTERNAL", keySpec: "RSA_2048", keyUsage: "ENCRYPT_DECRYPT" })).keyId;
    await importInto(t.service, keyId, pkcs8(kp), "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048");
    const ct = publicEncrypt({ key: kp.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, Buffer.from("to the imported key"));
    expect((await t.service.decrypt({ keyId, ciphertextBlob: ct, encryptionAlgorithm: "RSAES_OAEP_SHA_1" })).plaintext.toString()).toBe("to the imported key");
    expect(createPublicKey({ key: (await t.service.getPublicKey({ keyId })).publicKey, format: "der", type: "spki" }).equals(kp.publicKey)).toBe(true);
    await t.close();

    // After a restart the imported pairs are found again by label, like generated ones.
    const again = await open();
    expect((await again.service.decrypt({ keyId, ciphertextBlob: ct, encryptionAlgorithm: "RSAES_OAEP_SHA_1" })).plaintext.toString()).toBe("to the imported key");
    expect((await again.service.getPublicKey({ keyId })).publicKey).toEqual(kp.publicKey.export({ format: "der", type: "spki" }));
    await again.close();
  }, 180_000);

  it("refuses private keys of another spec, non-keys, and wrappings AWS does not allow; nothing stays behind", async () => {
    const t = await open();
    const inspect = new TokenInspector(token);
    // Every private or public key object but wrapping keys (GetParametersForImport adds those).
    const pairObjects = () => [...inspect.objects(pkcs11js.CKO_PRIVATE_KEY), ...inspect.objects(pkcs11js.CKO_PUBLIC_KEY)].filter((o) => !o.label.startsWith("p11kms-wrap:")).length;
    const before = pairObjects();
    const p256 = (await t.service.createKey({ origin: "EXTERNAL", keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    const rsa3072 = (await t.service.createKey({ origin: "EXTERNAL", keySpec: "RSA_3072", keyUsage: "SIGN_VERIFY" })).keyId;
    const wrong = [
      [p256, pkcs8(generateKeyPairSync("ec", { namedCurve: "P-384" })), "RSA_AES_KEY_WRAP_SHA_1"],
      [p256, pkcs8(generateKeyPairSync("rsa", { modulusLength: 2048 })), "RSA_AES_KEY_WRAP_SHA_256"],
      [p256, randomBytes(100), "RSAES_OAEP_SHA_1"],
      [rsa3072, pkcs8(generateKeyPairSync("rsa", { modulusLength: 2048 })), "RSA_AES_KEY_WRAP_SHA_1"],
      [rsa3072, pkcs8(generateKeyPairSync("ec", { namedCurve: "P-256" })), "RSA_AES_KEY_WRAP_SHA_1"],
      [rsa3072, randomBytes(32), "RSA_AES_KEY_WRAP_SHA_256"],
    ] as const;
    for (const [keyId, material, alg] of wrong) {
      expect(await code(importInto(t.service, keyId, material, alg)), `${alg} ${material.length}`).toBe("IncorrectKeyMaterialException");
    }
    const params = (keyId: string, alg: string, spec: string) => code(t.service.getParametersForImport({ keyId, wrappingAlgorithm: alg, wrappingKeySpec: spec }));
    expect(await params(rsa3072, "RSAES_OAEP_SHA_1", "RSA_4096")).toBe("ValidationException");
    expect(await params(rsa3072, "RSAES_OAEP_SHA_256", "RSA_4096")).toBe("ValidationException");
    const p521 = (await t.service.createKey({ origin: "EXTERNAL", keySpec: "ECC_NIST_P521", keyUsage: "SIGN_VERIFY" })).keyId;
    expect(await params(p521, "RSAES_OAEP_SHA_1", "RSA_2048")).toBe("ValidationException");
    expect(await params(p521, "RSAES_OAEP_SHA_1", "RSA_3072")).toBe("ok");
    expect(await code(t.service.createKey({ origin: "EXTERNAL", keySpec: "ECC_NIST_EDWARDS25519", keyUsage: "SIGN_VERIFY" }))).toBe("UnsupportedOperationException");
    for (const keyId of [p256, rsa3072]) expect((await t.service.describeKey({ keyId })).keyState).toBe("PendingImport");
    expect(pairObjects()).toBe(before);
    await t.close();
  }, 180_000);

  it("re-imports the same material over present material to change its expiry; other material is refused", async () => {
    const t = await open();
    const day = 86_400_000;
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    const material = randomBytes(32);
    await importInto(t.service, keyId, material, "RSAES_OAEP_SHA_1", "RSA_2048", { expirationModel: "KEY_MATERIAL_EXPIRES", validTo: new Date(clock.ms + day) });
    const blob = (await t.service.encrypt({ keyId, plaintext: Buffer.from("kept") })).ciphertextBlob;
    const later = new Date(clock.ms + 10 * day);
    await importInto(t.service, keyId, material, "RSA_AES_KEY_WRAP_SHA_256", "RSA_3072", { expirationModel: "KEY_MATERIAL_EXPIRES", validTo: later });
    expect(t.imported.at(-1)).toMatchObject({ keyId, reimport: true, validTo: later });
    expect((await t.service.describeKey({ keyId })).validTo).toEqual(later);
    expect(await code(importInto(t.service, keyId, randomBytes(32), "RSAES_OAEP_SHA_1"))).toBe("IncorrectKeyMaterialException");
    expect((await t.service.describeKey({ keyId })).keyState).toBe("Enabled");
    // The old ValidTo passes: nothing expires; the new one does.
    clock.advanceDays(2);
    expect((await t.jobs.tick()).expired).toEqual([]);
    expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("kept");
    // Disabled keys take it too and stay disabled; DOES_NOT_EXPIRE clears the expiry.
    await t.service.disableKey({ keyId });
    await importInto(t.service, keyId, material, "RSAES_OAEP_SHA_256");
    const d = await t.service.describeKey({ keyId });
    expect([d.keyState, d.expirationModel, d.validTo]).toEqual(["Disabled", "KEY_MATERIAL_DOES_NOT_EXPIRE", undefined]);
    await t.service.enableKey({ keyId });
    clock.advanceDays(20);
    expect((await t.jobs.tick()).expired).toEqual([]);
    expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("kept");

    // The same for a key pair: the public key identifies the material.
    const kp = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const ec = (await t.service.createKey({ origin: "EXTERNAL", keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    await importInto(t.service, ec, pkcs8(kp), "RSAES_OAEP_SHA_1");
    await importInto(t.service, ec, pkcs8(kp), "RSA_AES_KEY_WRAP_SHA_1", "RSA_2048", { validTo: new Date(clock.ms + day) });
    expect((await t.service.describeKey({ keyId: ec })).validTo).toEqual(new Date(clock.ms + day));
    expect(await code(importInto(t.service, ec, pkcs8(generateKeyPairSync("ec", { namedCurve: "P-256" })), "RSAES_OAEP_SHA_1"))).toBe("IncorrectKeyMaterialException");
    // HMAC: K and K‖00 give the same tags but are different material.
    const hmacMaterial = randomBytes(40);
    const mac = (await t.service.createKey({ origin: "EXTERNAL", keySpec: "HMAC_256", keyUsage: "GENERATE_VERIFY_MAC" })).keyId;
    await importInto(t.service, mac, hmacMaterial, "RSAES_OAEP_SHA_1");
    expect(await code(importInto(t.service, mac, Buffer.concat([hmacMaterial, Buffer.alloc(1)]), "RSAES_OAEP_SHA_1"))).toBe("IncorrectKeyMaterialException");
    expect(await code(importInto(t.service, mac, hmacMaterial, "RSA_AES_KEY_WRAP_SHA_1"))).toBe("ok");
    await t.close();
  }, 120_000);

  it("keeps the newest 5 import parameter sets per key: older ones of that key stop working, other keys' stay", async () => {
    const t = await open();
    const store = t.deps.keyStores.get(token.label)!;
    const keyId = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    const other = (await t.service.createKey({ origin: "EXTERNAL" })).keyId;
    const req = (id: string) => ({ keyId: id, wrappingAlgorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_2048" });
    const otherParams = await t.service.getParametersForImport(req(other));
    const sets = [];
    for (let i = 0; i < 7; i++) {
      sets.push(await t.service.getParametersForImport(req(keyId)));
      clock.ms += 1000; // distinct expiries: "newest" is by creation time
    }
    const before = store.outstandingWrappingKeys();
    expect(await code(t.service.getParametersForImport(req(keyId)))).toBe("ok");
    expect(store.outstandingWrappingKeys()).toBe(before); // one in, the oldest of this key out
    const material = randomBytes(32);
    const use = (id: string, p: { importToken: Buffer; publicKey: Buffer }) =>
      code(t.service.importKeyMaterial({ keyId: id, importToken: p.importToken, encryptedKeyMaterial: wrapKeyMaterial(material, p.publicKey, "RSAES_OAEP_SHA_1") }));
    // Seven sets, then an eighth: the newest five (sets 3–7) remain.
    expect(await use(keyId, sets[0]!)).toBe("ExpiredImportTokenException");
    expect(await use(keyId, sets[2]!)).toBe("ExpiredImportTokenException");
    expect(await use(keyId, sets[3]!)).toBe("ok");
    expect(await use(other, otherParams)).toBe("ok");
    await t.close();
  }, 120_000);
});
