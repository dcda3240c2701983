import { constants, createPublicKey, publicEncrypt } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import { KmsService } from "../../src/kms/service.js";
import type { KeySpec } from "../../src/kms/types.js";
import { openssl, withFiles } from "../helpers/openssl.js";
import { openService, PARTITION, type TestService } from "../helpers/service.js";
import { useTestToken } from "../helpers/softhsm.js";
import { INTERNAL_CALLER } from "../../src/kms/caller.js";

const token = useTestToken("rsa-enc");
let t: TestService;
let svc: KmsService;
const keys = new Map<KeySpec, string>();
const spki = new Map<KeySpec, Buffer>();
const SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"] as const;
const LIMITS = { RSA_2048: [214, 190], RSA_3072: [342, 318], RSA_4096: [470, 446] } as const;
const ALGS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"] as const;

beforeAll(async () => {
  t = openService(token);
  svc = t.service;
  for (const spec of SPECS) {
    const id = (await svc.createKey({ keySpec: spec, keyUsage: "ENCRYPT_DECRYPT" })).keyId;
    keys.set(spec, id);
    spki.set(spec, (await svc.getPublicKey({ keyId: id })).publicKey);
  }
}, 120_000);
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

function nodeEncrypt(spec: KeySpec, alg: (typeof ALGS)[number], plaintext: Buffer): Buffer {
  const key = createPublicKey({ key: spki.get(spec)!, format: "der", type: "spki" });
  return publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: alg === "RSAES_OAEP_SHA_1" ? "sha1" : "sha256" }, plaintext);
}

describe("RSA Decrypt of ciphertexts made elsewhere", () => {
  for (const spec of SPECS) {
    for (const [i, alg] of ALGS.entries()) {
      it(`${spec} ${alg}: node:crypto ciphertexts of 1 and ${LIMITS[spec][i]} bytes decrypt`, async () => {
        for (const size of [1, 17, LIMITS[spec][i]]) {
          const plaintext = Buffer.alloc(size, size);
          const res = await svc.decrypt({ ciphertextBlob: nodeEncrypt(spec, alg, plaintext), keyId: keys.get(spec), encryptionAlgorithm: alg });
          expect(res.plaintext.equals(plaintext)).toBe(true);
          expect(res.encryptionAlgorithm).toBe(alg);
          expect(res.keyId).toBe(`arn:aws:kms:${PARTITION.region}:${PARTITION.accountId}:key/${keys.get(spec)}`);
        }
      });
    }
  }

  it.each(ALGS)("openssl pkeyutl %s ciphertexts decrypt", async (alg) => {
    const hash = alg === "RSAES_OAEP_SHA_1" ? "sha1" : "sha256";
    const ct = withFiles({ "pub.der": spki.get("RSA_2048")!, msg: Buffer.from("from openssl") }, (dir) => {
      const r = openssl(
        ["pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.der", "-keyform", "DER", "-in", "msg", "-out", "ct",
          "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", `rsa_oaep_md:${hash}`, "-pkeyopt", `rsa_mgf1_md:${hash}`],
        dir,
      );
      expect(r.out).toBe("");
      return readFileSync(join(dir, "ct"));
    });
    expect(ct.length).toBe(256);
    const res = await svc.decrypt({ ciphertextBlob: ct, keyId: keys.get("RSA_2048"), encryptionAlgorithm: alg });
    expect(res.plaintext.toString()).toBe("from openssl");
  });
});

describe("RSA Encrypt", () => {
  it.each(ALGS)("%s: the service's ciphertexts round-trip and differ each time (randomised padding)", async (alg) => {
    const keyId = keys.get("RSA_3072");
    const a = await svc.encrypt({ keyId, plaintext: Buffer.from("hello"), encryptionAlgorithm: alg });
    const b = await svc.encrypt({ keyId, plaintext: Buffer.from("hello"), encryptionAlgorithm: alg });
    expect(a.ciphertextBlob.length).toBe(384);
    expect(a.ciphertextBlob.equals(b.ciphertextBlob)).toBe(false);
    expect(a.encryptionAlgorithm).toBe(alg);
    for (const ct of [a.ciphertextBlob, b.ciphertextBlob]) {
      expect((await svc.decrypt({ ciphertextBlob: ct, keyId, encryptionAlgorithm: alg })).plaintext.toString()).toBe("hello");
    }
  });

  it("enforces AWS's plaintext limits per key size and algorithm", async () => {
    for (const spec of SPECS) {
      for (const [i, alg] of ALGS.entries()) {
        const max = LIMITS[spec][i];
        await svc.encrypt({ keyId: keys.get(spec), plaintext: Buffer.alloc(max, 1), encryptionAlgorithm: alg });
        expect(await code(svc.encrypt({ keyId: keys.get(spec), plaintext: Buffer.alloc(max + 1, 1), encryptionAlgorithm: alg }))).toBe("ValidationException");
      }
    }
  });

  it("ReEncrypt moves an RSA ciphertext to a symmetric key and back", async () => {
    const aes = (await svc.createKey({})).keyId;
    const rsa = keys.get("RSA_2048");
    const ct = nodeEncrypt("RSA_2048", "RSAES_OAEP_SHA_256", Buffer.from("move me"));
    const re = await svc.reEncrypt({ ciphertextBlob: ct, sourceKeyId: rsa, sourceEncryptionAlgorithm: "RSAES_OAEP_SHA_256", destinationKeyId: aes });
    expect(re.sourceEncryptionAlgorithm).toBe("RSAES_OAEP_SHA_256");
    expect((await svc.decrypt({ ciphertextBlob: re.ciphertextBlob })).plaintext.toString()).toBe("move me");
    const back = await svc.reEncrypt({ ciphertextBlob: re.ciphertextBlob, destinationKeyId: rsa, destinationEncryptionAlgorithm: "RSAES_OAEP_SHA_1" });
    expect((await svc.decrypt({ ciphertextBlob: back.ciphertextBlob, keyId: rsa, encryptionAlgorithm: "RSAES_OAEP_SHA_1" })).plaintext.toString()).toBe("move me");
  });
});

describe("RSA bad input", () => {
  it("answers InvalidCiphertextException for every tampered ciphertext, whichever decoding step fails", async () => {
    const keyId = keys.get("RSA_2048");
    for (const alg of ALGS) {
      const ct = nodeEncrypt("RSA_2048", alg, Buffer.from("secret"));
      const variants: Buffer[] = [0, 1, 100, 255].map((i) => {
        const b = Buffer.from(ct);
        b[i]! ^= 0x40;
        return b;
      });
      variants.push(ct.subarray(1), Buffer.concat([ct, Buffer.from([0])]), Buffer.alloc(256, 0xff), Buffer.alloc(256, 0));
      // Encrypted with the other OAEP hash: decodes to garbage, must fail the same way.
      variants.push(nodeEncrypt("RSA_2048", alg === "RSAES_OAEP_SHA_1" ? "RSAES_OAEP_SHA_256" : "RSAES_OAEP_SHA_1", Buffer.from("secret")));
      for (const [i, v] of variants.entries()) {
        expect({ alg, i, got: await code(svc.decrypt({ ciphertextBlob: v, keyId, encryptionAlgorithm: alg })) }).toEqual({ alg, i, got: "InvalidCiphertextException" });
      }
      // The sessions are healthy afterwards.
      expect((await svc.decrypt({ ciphertextBlob: ct, keyId, encryptionAlgorithm: alg })).plaintext.toString()).toBe("secret");
    }
  });

  it("names the AWS error for each mistake", async () => {
    const rsa = keys.get("RSA_2048")!;
    const aes = (await svc.createKey({})).keyId;
    const signer = (await svc.createKey({ keySpec: "RSA_2048", keyUsage: "SIGN_VERIFY" })).keyId;
    const ct = nodeEncrypt("RSA_2048", "RSAES_OAEP_SHA_1", Buffer.from("x"));
    const cases: [string, Promise<unknown>, string][] = [
      ["Encrypt without an algorithm (SYMMETRIC_DEFAULT)", svc.encrypt({ keyId: rsa, plaintext: Buffer.from("x") }), "InvalidKeyUsageException"],
      ["Encrypt with an encryption context", svc.encrypt({ keyId: rsa, plaintext: Buffer.from("x"), encryptionAlgorithm: "RSAES_OAEP_SHA_1", encryptionContext: { a: "b" } }), "ValidationException"],
      ["Decrypt with an encryption context", svc.decrypt({ ciphertextBlob: ct, keyId: rsa, encryptionAlgorithm: "RSAES_OAEP_SHA_1", encryptionContext: { a: "b" } }), "ValidationException"],
      ["Decrypt RSA without KeyId", svc.decrypt({ ciphertextBlob: ct, encryptionAlgorithm: "RSAES_OAEP_SHA_1" }), "ValidationException"],
      ["Decrypt naming the RSA key without an algorithm", svc.decrypt({ ciphertextBlob: ct, keyId: rsa }), "InvalidKeyUsageException"],
      ["Decrypt an RSA ciphertext without key or algorithm", svc.decrypt({ ciphertextBlob: ct }), "InvalidCiphertextException"],
      ["RSA algorithm with a symmetric key", svc.decrypt({ ciphertextBlob: ct, keyId: aes, encryptionAlgorithm: "RSAES_OAEP_SHA_1" }), "InvalidKeyUsageException"],
      ["Encrypt with a SIGN_VERIFY key", svc.encrypt({ keyId: signer, plaintext: Buffer.from("x"), encryptionAlgorithm: "RSAES_OAEP_SHA_1" }), "InvalidKeyUsageException"],
      ["Sign with an ENCRYPT_DECRYPT key", svc.sign({ keyId: rsa, message: Buffer.from("x"), signingAlgorithm: "RSASSA_PSS_SHA_256" }), "InvalidKeyUsageException"],
      ["GenerateDataKey under an RSA key", svc.generateDataKey({ keyId: rsa, keySpec: "AES_256" }), "InvalidKeyUsageException"],
      ["DryRun decrypt", svc.decrypt({ ciphertextBlob: ct, keyId: rsa, encryptionAlgorithm: "RSAES_OAEP_SHA_1", dryRun: true }), "DryRunOperationException"],
    ];
    for (const [name, p, want] of cases) expect({ name, got: await code(p) }).toEqual({ name, got: want });
  });

  it("refuses a disabled key", async () => {
    const keyId = (await svc.createKey({ keySpec: "RSA_2048", keyUsage: "ENCRYPT_DECRYPT" })).keyId;
    await t.metadata.updateKeyState(keyId, "Enabled", "Disabled");
    expect(await code(svc.encrypt({ keyId, plaintext: Buffer.from("x"), encryptionAlgorithm: "RSAES_OAEP_SHA_1" }))).toBe("DisabledException");
    expect(await code(svc.decrypt({ ciphertextBlob: Buffer.alloc(256, 1), keyId, encryptionAlgorithm: "RSAES_OAEP_SHA_1" }))).toBe("DisabledException");
  });
});

describe("rsaOaepSha256Fallback: deny", () => {
  it("refuses RSAES_OAEP_SHA_256 decryption with UnsupportedOperationException, keeps SHA-1 working, and says so in DescribeKey", async () => {
    const denied = Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 2, rsaOaepSha256Fallback: "deny" });
    const strict = new KmsService({ ...svc.deps, keyStores: new Map([["default", denied]]) }, INTERNAL_CALLER);
    const keyId = keys.get("RSA_2048")!;
    expect((await strict.describeKey({ keyId })).rsaOaepSha256Decryption).toBe("unsupported");
    const ct256 = nodeEncrypt("RSA_2048", "RSAES_OAEP_SHA_256", Buffer.from("x"));
    expect(await code(strict.decrypt({ ciphertextBlob: ct256, keyId, encryptionAlgorithm: "RSAES_OAEP_SHA_256" }))).toBe("UnsupportedOperationException");
    const ct1 = nodeEncrypt("RSA_2048", "RSAES_OAEP_SHA_1", Buffer.from("y"));
    expect((await strict.decrypt({ ciphertextBlob: ct1, keyId, encryptionAlgorithm: "RSAES_OAEP_SHA_1" })).plaintext.toString()).toBe("y");
    // A key made while the fallback is denied may not do raw RSA at all, even once the fallback is allowed.
    const strictKey = (await strict.createKey({ keySpec: "RSA_2048", keyUsage: "ENCRYPT_DECRYPT" })).keyId;
    const pub = createPublicKey({ key: (await strict.getPublicKey({ keyId: strictKey })).publicKey, format: "der", type: "spki" });
    const ct = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, Buffer.from("z"));
    const allowed = Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 2, rsaOaepSha256Fallback: "allow" });
    const lenient = new KmsService({ ...svc.deps, keyStores: new Map([["default", allowed]]) }, INTERNAL_CALLER);
    expect(await code(lenient.decrypt({ ciphertextBlob: ct, keyId: strictKey, encryptionAlgorithm: "RSAES_OAEP_SHA_256" }))).toBe("UnsupportedOperationException");
    const ct1b = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha1" }, Buffer.from("w"));
    expect((await lenient.decrypt({ ciphertextBlob: ct1b, keyId: strictKey, encryptionAlgorithm: "RSAES_OAEP_SHA_1" })).plaintext.toString()).toBe("w");
    await allowed.close();
    await denied.close();
  });
});
