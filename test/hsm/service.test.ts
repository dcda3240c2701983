import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyLabel } from "../../src/hsm/objects/templates.js";
import type { KmsService } from "../../src/kms/service.js";
import { openService, PARTITION, type TestService } from "../helpers/service.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("svc-test");
let t: TestService;
let svc: KmsService;
let keyId: string;

beforeAll(async () => {
  t = openService(token);
  svc = t.service;
  keyId = (await svc.createKey({ description: "primary" })).keyId;
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

describe("CreateKey / DescribeKey / ListKeys", () => {
  it("creates an enabled SYMMETRIC_DEFAULT key with AWS metadata", async () => {
    const m = await svc.createKey({ description: "d", tags: [{ tagKey: "team", tagValue: "payments" }] });
    expect(m).toMatchObject({
      awsAccountId: PARTITION.accountId,
      arn: `arn:aws:kms:${PARTITION.region}:${PARTITION.accountId}:key/${m.keyId}`,
      enabled: true,
      keyState: "Enabled",
      keySpec: "SYMMETRIC_DEFAULT",
      keyUsage: "ENCRYPT_DECRYPT",
      origin: "AWS_KMS",
      keyManager: "CUSTOMER",
      encryptionAlgorithms: ["SYMMETRIC_DEFAULT"],
      description: "d",
    });
    expect(await t.metadata.getTags(m.keyId)).toEqual([{ tagKey: "team", tagValue: "payments" }]);
    expect((await svc.describeKey({ keyId: m.arn })).keyId).toBe(m.keyId);
  });

  it("rejects bad CreateKey input without leaving anything behind", async () => {
    const before = (await svc.listKeys({ limit: 1000 })).keys.length;
    const objectsBefore = new TokenInspector(token).secretKeys().length;
    expect(await code(svc.createKey({ keySpec: "AES_999" }))).toBe("ValidationException");
    expect(await code(svc.createKey({ keySpec: "SM2", keyUsage: "SIGN_VERIFY" }))).toBe("UnsupportedOperationException");
    expect(await code(svc.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "KEY_AGREEMENT" }))).toBe("UnsupportedOperationException");
    expect(await code(svc.createKey({ keySpec: "HMAC_256", keyUsage: "ENCRYPT_DECRYPT" }))).toBe("ValidationException");
    expect(await code(svc.createKey({ keyUsage: "SIGN_VERIFY" }))).toBe("ValidationException");
    expect(await code(svc.createKey({ origin: "EXTERNAL", keySpec: "ECC_NIST_EDWARDS25519", keyUsage: "SIGN_VERIFY" }))).toBe("UnsupportedOperationException");
    expect(await code(svc.createKey({ origin: "AWS_CLOUDHSM" }))).toBe("UnsupportedOperationException");
    expect(await code(svc.createKey({ description: "x".repeat(8193) }))).toBe("ValidationException");
    expect(await code(svc.createKey({ tags: [{ tagKey: "aws:x", tagValue: "" }] }))).toBe("TagException");
    expect(await code(svc.createKey({ multiRegion: true }))).toBe("UnsupportedOperationException");
    expect((await svc.listKeys({ limit: 1000 })).keys.length).toBe(before);
    expect(new TokenInspector(token).secretKeys().length).toBe(objectsBefore);
  });

  it("pages through ListKeys with opaque markers", async () => {
    for (let i = 0; i < 4; i++) await svc.createKey({});
    const all = (await svc.listKeys({ limit: 1000 })).keys.map((k) => k.keyId);
    const seen: string[] = [];
    let marker: string | undefined;
    do {
      const page = await svc.listKeys({ limit: 2, marker });
      expect(page.keys.length).toBeLessThanOrEqual(2);
      seen.push(...page.keys.map((k) => k.keyId));
      marker = page.truncated ? page.nextMarker : undefined;
      if (page.truncated) expect(page.nextMarker).toBeTruthy();
    } while (marker);
    expect(seen).toEqual(all);
    expect(await code(svc.listKeys({ marker: "garbage" }))).toBe("InvalidMarkerException");
    expect(await code(svc.listKeys({ limit: 0 }))).toBe("ValidationException");
    expect(await code(svc.listKeys({ limit: 1001 }))).toBe("ValidationException");
  });

  it("answers unknown and malformed key ids with NotFoundException", async () => {
    expect(await code(svc.describeKey({ keyId: "00000000-0000-4000-8000-000000000000" }))).toBe("NotFoundException");
    expect(await code(svc.describeKey({ keyId: `arn:aws:kms:us-east-1:${PARTITION.accountId}:key/${keyId}` }))).toBe("NotFoundException");
    expect(await code(svc.describeKey({ keyId: "alias/foo" }))).toBe("NotFoundException");
    expect(await code(svc.describeKey({ keyId: "" }))).toBe("ValidationException");
  });
});

describe("Encrypt / Decrypt / ReEncrypt", () => {
  const ctx = { tenant: "acme", purpose: "test" };

  it("round-trips with an encryption context given in any order", async () => {
    const enc = await svc.encrypt({ keyId, plaintext: Buffer.from("secret"), encryptionContext: ctx });
    expect(enc.encryptionAlgorithm).toBe("SYMMETRIC_DEFAULT");
    expect(enc.ciphertextBlob.length).toBe(6 + 50);
    const dec = await svc.decrypt({ ciphertextBlob: enc.ciphertextBlob, encryptionContext: { purpose: "test", tenant: "acme" } });
    expect(dec.plaintext.toString()).toBe("secret");
    expect(dec.keyId).toBe(enc.keyId);
  });

  it("fits a 4096-byte plaintext in a blob of at most 6144 bytes", async () => {
    const enc = await svc.encrypt({ keyId, plaintext: Buffer.alloc(4096, 7) });
    expect(enc.ciphertextBlob.length).toBeLessThanOrEqual(6144);
    expect((await svc.decrypt({ ciphertextBlob: enc.ciphertextBlob })).plaintext.equals(Buffer.alloc(4096, 7))).toBe(true);
  });

  it("rejects a wrong, missing or extra encryption context", async () => {
    const { ciphertextBlob } = await svc.encrypt({ keyId, plaintext: Buffer.from("x"), encryptionContext: ctx });
    expect(await code(svc.decrypt({ ciphertextBlob }))).toBe("InvalidCiphertextException");
    expect(await code(svc.decrypt({ ciphertextBlob, encryptionContext: { tenant: "acme" } }))).toBe("InvalidCiphertextException");
    expect(await code(svc.decrypt({ ciphertextBlob, encryptionContext: { ...ctx, extra: "" } }))).toBe("InvalidCiphertextException");
    expect(await code(svc.decrypt({ ciphertextBlob, encryptionContext: { ...ctx, tenant: "ACME" } }))).toBe("InvalidCiphertextException");
  });

  it("says IncorrectKeyException when the caller names another key", async () => {
    const other = (await svc.createKey({})).keyId;
    const { ciphertextBlob } = await svc.encrypt({ keyId, plaintext: Buffer.from("x") });
    expect(await code(svc.decrypt({ ciphertextBlob, keyId: other }))).toBe("IncorrectKeyException");
    expect((await svc.decrypt({ ciphertextBlob, keyId })).plaintext.toString()).toBe("x");
  });

  it("validates sizes and fields", async () => {
    expect(await code(svc.encrypt({ keyId, plaintext: Buffer.alloc(0) }))).toBe("ValidationException");
    expect(await code(svc.encrypt({ keyId, plaintext: Buffer.alloc(4097) }))).toBe("ValidationException");
    expect(await code(svc.encrypt({ keyId, plaintext: Buffer.from("x"), encryptionAlgorithm: "ROT13" }))).toBe("ValidationException");
    expect(await code(svc.encrypt({ keyId, plaintext: Buffer.from("x"), encryptionAlgorithm: "RSAES_OAEP_SHA_256" }))).toBe("InvalidKeyUsageException");
    expect(await code(svc.encrypt({ keyId, plaintext: Buffer.from("x"), grantTokens: Array(11).fill("t") }))).toBe("ValidationException");
    expect(await code(svc.decrypt({ ciphertextBlob: Buffer.alloc(0) }))).toBe("ValidationException");
    expect(await code(svc.decrypt({ ciphertextBlob: Buffer.alloc(6145, 1) }))).toBe("ValidationException");
    expect(await code(svc.decrypt({ ciphertextBlob: Buffer.alloc(100, 1) }))).toBe("InvalidCiphertextException");
  });

  it("enforces key state: Disabled → DisabledException, PendingDeletion → KMSInvalidStateException", async () => {
    const k = (await svc.createKey({})).keyId;
    const { ciphertextBlob } = await svc.encrypt({ keyId: k, plaintext: Buffer.from("x") });
    await t.metadata.updateKeyState(k, "Enabled", "Disabled");
    expect(await code(svc.encrypt({ keyId: k, plaintext: Buffer.from("x") }))).toBe("DisabledException");
    expect(await code(svc.decrypt({ ciphertextBlob }))).toBe("DisabledException");
    expect(await code(svc.generateDataKey({ keyId: k, keySpec: "AES_256" }))).toBe("DisabledException");
    expect((await svc.describeKey({ keyId: k })).enabled).toBe(false);
    await t.metadata.updateKeyState(k, "Disabled", "PendingDeletion");
    expect(await code(svc.encrypt({ keyId: k, plaintext: Buffer.from("x") }))).toBe("KMSInvalidStateException");
    expect(await code(svc.decrypt({ ciphertextBlob }))).toBe("KMSInvalidStateException");
  });

  it("re-encrypts under another key and context without returning plaintext", async () => {
    const dest = (await svc.createKey({})).keyId;
    const { ciphertextBlob } = await svc.encrypt({ keyId, plaintext: Buffer.from("move me"), encryptionContext: ctx });
    const re = await svc.reEncrypt({
      ciphertextBlob,
      sourceEncryptionContext: ctx,
      destinationKeyId: dest,
      destinationEncryptionContext: { v: "2" },
    });
    expect(re).not.toHaveProperty("plaintext");
    expect(re.sourceKeyId.endsWith(keyId)).toBe(true);
    expect(re.keyId.endsWith(dest)).toBe(true);
    const dec = await svc.decrypt({ ciphertextBlob: re.ciphertextBlob, encryptionContext: { v: "2" } });
    expect(dec.plaintext.toString()).toBe("move me");
    expect(await code(svc.reEncrypt({ ciphertextBlob, destinationKeyId: dest }))).toBe("InvalidCiphertextException");
    expect(await code(svc.reEncrypt({ ciphertextBlob, sourceEncryptionContext: ctx, destinationKeyId: dest, sourceKeyId: dest }))).toBe("IncorrectKeyException");
    expect(await code(svc.reEncrypt({ ciphertextBlob, sourceEncryptionContext: ctx }))).toBe("ValidationException");
  });

  it("honours DryRun without producing output", async () => {
    expect(await code(svc.encrypt({ keyId, plaintext: Buffer.from("x"), dryRun: true }))).toBe("DryRunOperationException");
    const { ciphertextBlob } = await svc.encrypt({ keyId, plaintext: Buffer.from("x") });
    expect(await code(svc.decrypt({ ciphertextBlob, dryRun: true }))).toBe("DryRunOperationException");
  });
});

describe("GenerateDataKey / GenerateRandom", () => {
  it("returns a data key and its sealed copy", async () => {
    const dk = await svc.generateDataKey({ keyId, keySpec: "AES_256", encryptionContext: { a: "b" } });
    expect(dk.plaintext.length).toBe(32);
    const back = await svc.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { a: "b" } });
    expect(back.plaintext.equals(dk.plaintext)).toBe(true);
    expect((await svc.generateDataKey({ keyId, keySpec: "AES_128" })).plaintext.length).toBe(16);
    expect((await svc.generateDataKey({ keyId, numberOfBytes: 1024 })).plaintext.length).toBe(1024);
    const np = await svc.generateDataKeyWithoutPlaintext({ keyId, numberOfBytes: 64 });
    expect(np).not.toHaveProperty("plaintext");
    expect((await svc.decrypt({ ciphertextBlob: np.ciphertextBlob })).plaintext.length).toBe(64);
  });

  it("requires exactly one of KeySpec and NumberOfBytes, in range", async () => {
    expect(await code(svc.generateDataKey({ keyId }))).toBe("ValidationException");
    expect(await code(svc.generateDataKey({ keyId, keySpec: "AES_256", numberOfBytes: 32 }))).toBe("ValidationException");
    expect(await code(svc.generateDataKey({ keyId, numberOfBytes: 0 }))).toBe("ValidationException");
    expect(await code(svc.generateDataKey({ keyId, numberOfBytes: 1025 }))).toBe("ValidationException");
    expect(await code(svc.generateDataKey({ keyId, keySpec: "AES_512" }))).toBe("ValidationException");
  });

  it("generates 1–1024 random bytes and rejects the rest", async () => {
    expect((await svc.generateRandom({ numberOfBytes: 1 })).plaintext.length).toBe(1);
    expect((await svc.generateRandom({ numberOfBytes: 1024 })).plaintext.length).toBe(1024);
    expect(await code(svc.generateRandom({}))).toBe("ValidationException");
    expect(await code(svc.generateRandom({ numberOfBytes: 0 }))).toBe("ValidationException");
    expect(await code(svc.generateRandom({ numberOfBytes: 1025 }))).toBe("ValidationException");
    expect(await code(svc.generateRandom({ numberOfBytes: 8, customKeyStoreId: "nope" }))).toBe("CustomKeyStoreNotFoundException");
  });
});

describe("non-exportability of every key the service created", () => {
  it("refuses CKA_VALUE and C_WrapKey for each p11kms object on the token", async () => {
    const inspect = new TokenInspector(token);
    const wrapper = inspect.wrappingKey();
    // Token objects and the in-memory session copies of the keys used above: none may be read or wrapped.
    const ours = inspect.secretKeys().filter((k) => k.label.startsWith("p11kms:"));
    const onToken = ours.filter((k) => inspect.bool(k.handle, pkcs11js.CKA_TOKEN));
    const listed = (await svc.listKeys({ limit: 1000 })).keys;
    expect(onToken.length).toBe(listed.length);
    expect(ours.length).toBeGreaterThan(onToken.length);
    for (const k of listed) expect(onToken.map((o) => o.label)).toContain(keyLabel(k.keyId, 1));
    for (const { handle } of ours) {
      expect(inspect.rv(() => inspect.mod.C_GetAttributeValue(inspect.session, handle, [{ type: pkcs11js.CKA_VALUE }]))).toBe(0x11);
      expect(inspect.rv(() => inspect.mod.C_WrapKey(inspect.session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, wrapper, handle, Buffer.alloc(128)))).toBe(0x6a);
    }
  });
});
