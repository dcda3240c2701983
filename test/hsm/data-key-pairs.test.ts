import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify } from "node:crypto";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KmsService } from "../../src/kms/service.js";
import { openService, PARTITION, type TestService } from "../helpers/service.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("data-key-pairs");
let t: TestService;
let svc: KmsService;
let keyId: string;

beforeAll(async () => {
  t = openService(token);
  svc = t.service;
  keyId = (await svc.createKey({ description: "wraps data key pairs" })).keyId;
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

const PAIRS = [
  ["RSA_2048", "rsa", { modulusLength: 2048 }],
  ["RSA_3072", "rsa", { modulusLength: 3072 }],
  ["RSA_4096", "rsa", { modulusLength: 4096 }],
  ["ECC_NIST_P256", "ec", { namedCurve: "prime256v1" }],
  ["ECC_NIST_P384", "ec", { namedCurve: "secp384r1" }],
  ["ECC_NIST_P521", "ec", { namedCurve: "secp521r1" }],
  ["ECC_SECG_P256K1", "ec", { namedCurve: "secp256k1" }],
  ["ECC_NIST_EDWARDS25519", "ed25519", {}],
] as const;

describe("GenerateDataKeyPair", () => {
  it.each(PAIRS)("%s: PKCS#8 private key, matching DER SPKI public key, sealed copy that Decrypt opens", async (spec, type, details) => {
    const ctx = { purpose: "pair" };
    const res = await svc.generateDataKeyPair({ keyId, keyPairSpec: spec, encryptionContext: ctx });
    expect(res.keyPairSpec).toBe(spec);
    expect(res.keyId).toBe(`arn:aws:kms:${PARTITION.region}:${PARTITION.accountId}:key/${keyId}`);
    const priv = createPrivateKey({ key: res.privateKeyPlaintext, format: "der", type: "pkcs8" });
    const pub = createPublicKey({ key: res.publicKey, format: "der", type: "spki" });
    expect(priv.asymmetricKeyType).toBe(type);
    expect(pub.asymmetricKeyDetails).toMatchObject(details);
    // The halves belong together: a signature by the private key verifies with the public key.
    const hash = type === "ed25519" ? null : "sha256";
    const sig = nodeSign(hash, Buffer.from("pair check"), priv);
    expect(nodeVerify(hash, Buffer.from("pair check"), pub, sig)).toBe(true);
    expect(createPublicKey(priv).export({ format: "der", type: "spki" }).equals(res.publicKey)).toBe(true);
    // The ciphertext is an ordinary blob under the KMS key, bound to the context.
    const opened = await svc.decrypt({ ciphertextBlob: res.privateKeyCiphertextBlob, encryptionContext: ctx });
    expect(opened.plaintext.equals(res.privateKeyPlaintext)).toBe(true);
    expect(await code(svc.decrypt({ ciphertextBlob: res.privateKeyCiphertextBlob }))).toBe("InvalidCiphertextException");
  });

  it("gives a fresh pair every time and leaves no objects on the token", async () => {
    const inspect = new TokenInspector(token);
    const count = () => inspect.objects(pkcs11js.CKO_PRIVATE_KEY).length + inspect.objects(pkcs11js.CKO_PUBLIC_KEY).length + inspect.secretKeys().length;
    const before = count();
    const a = await svc.generateDataKeyPair({ keyId, keyPairSpec: "ECC_NIST_P256" });
    const b = await svc.generateDataKeyPair({ keyId, keyPairSpec: "ECC_NIST_P256" });
    expect(a.publicKey.equals(b.publicKey)).toBe(false);
    expect(count()).toBe(before);
  });

  it("WithoutPlaintext returns only the sealed private key and the public key", async () => {
    const res = await svc.generateDataKeyPairWithoutPlaintext({ keyId, keyPairSpec: "RSA_2048" });
    expect(Object.keys(res).sort()).toEqual(["keyId", "keyPairSpec", "privateKeyCiphertextBlob", "publicKey"]);
    const pkcs8 = (await svc.decrypt({ ciphertextBlob: res.privateKeyCiphertextBlob })).plaintext;
    const priv = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
    expect(createPublicKey(priv).export({ format: "der", type: "spki" }).equals(res.publicKey)).toBe(true);
  });

  it("names the AWS error for each mistake", async () => {
    const rsa = (await svc.createKey({ keySpec: "RSA_2048", keyUsage: "ENCRYPT_DECRYPT" })).keyId;
    const hmac = (await svc.createKey({ keySpec: "HMAC_256", keyUsage: "GENERATE_VERIFY_MAC" })).keyId;
    const cases: [string, Promise<unknown>, string][] = [
      ["no KeyPairSpec", svc.generateDataKeyPair({ keyId }), "ValidationException"],
      ["unknown KeyPairSpec", svc.generateDataKeyPair({ keyId, keyPairSpec: "RSA_1024" }), "ValidationException"],
      ["SM2 (no device support)", svc.generateDataKeyPair({ keyId, keyPairSpec: "SM2" }), "UnsupportedOperationException"],
      ["an RSA KMS key", svc.generateDataKeyPair({ keyId: rsa, keyPairSpec: "ECC_NIST_P256" }), "InvalidKeyUsageException"],
      ["an HMAC KMS key", svc.generateDataKeyPair({ keyId: hmac, keyPairSpec: "ECC_NIST_P256" }), "InvalidKeyUsageException"],
      ["DryRun", svc.generateDataKeyPair({ keyId, keyPairSpec: "ECC_NIST_P256", dryRun: true }), "DryRunOperationException"],
    ];
    for (const [name, p, want] of cases) expect({ name, got: await code(p) }).toEqual({ name, got: want });
    const disabled = (await svc.createKey({})).keyId;
    await t.metadata.updateKeyState(disabled, "Enabled", "Disabled");
    expect(await code(svc.generateDataKeyPairWithoutPlaintext({ keyId: disabled, keyPairSpec: "ECC_NIST_P256" }))).toBe("DisabledException");
  });
});
