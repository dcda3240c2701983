import { constants, createHash, createPublicKey, verify as nodeVerify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KmsService } from "../../src/kms/service.js";
import type { KeySpec, SigningAlgorithm } from "../../src/kms/types.js";
import { opensslVerify } from "../helpers/openssl.js";
import { openService, PARTITION, type TestService } from "../helpers/service.js";
import { useTestToken } from "../helpers/softhsm.js";

const token = useTestToken("signing");
let t: TestService;
let svc: KmsService;
const keys = new Map<KeySpec, string>();
const spki = new Map<KeySpec, Buffer>();

/** Every signing algorithm with a key spec AWS pairs it with. */
const CASES: [KeySpec, SigningAlgorithm][] = [
  ["RSA_2048", "RSASSA_PSS_SHA_256"],
  ["RSA_2048", "RSASSA_PSS_SHA_384"],
  ["RSA_2048", "RSASSA_PSS_SHA_512"],
  ["RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256"],
  ["RSA_2048", "RSASSA_PKCS1_V1_5_SHA_384"],
  ["RSA_2048", "RSASSA_PKCS1_V1_5_SHA_512"],
  ["RSA_3072", "RSASSA_PSS_SHA_384"],
  ["RSA_4096", "RSASSA_PKCS1_V1_5_SHA_512"],
  ["ECC_NIST_P256", "ECDSA_SHA_256"],
  ["ECC_NIST_P384", "ECDSA_SHA_384"],
  ["ECC_NIST_P521", "ECDSA_SHA_512"],
  ["ECC_SECG_P256K1", "ECDSA_SHA_256"],
  ["ECC_NIST_EDWARDS25519", "ED25519_SHA_512"],
];

beforeAll(async () => {
  t = openService(token);
  svc = t.service;
  for (const spec of new Set(CASES.map(([s]) => s))) {
    const id = (await svc.createKey({ keySpec: spec, keyUsage: "SIGN_VERIFY" })).keyId;
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

/** node:crypto's verdict on a signature, from the SPKI alone. */
function nodeVerifies(spec: KeySpec, alg: SigningAlgorithm, message: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({ key: spki.get(spec)!, format: "der", type: "spki" });
  if (alg === "ED25519_SHA_512") return nodeVerify(null, message, key, signature);
  const hash = `sha${/_SHA_(\d+)$/.exec(alg)![1]}`;
  if (alg.startsWith("RSASSA_PSS_")) {
    return nodeVerify(hash, message, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: createHash(hash).digest().length }, signature);
  }
  return nodeVerify(hash, message, key, signature); // PKCS#1 v1.5; ECDSA signatures in DER, node's default
}

describe("Sign: signatures that independent implementations accept", () => {
  const message = Buffer.from("p11kms interoperability message ✓");

  it.each(CASES)("%s %s, MessageType RAW: node:crypto and openssl verify", async (spec, alg) => {
    const res = await svc.sign({ keyId: keys.get(spec), message, signingAlgorithm: alg });
    expect(res.signingAlgorithm).toBe(alg);
    expect(res.keyId).toBe(`arn:aws:kms:${PARTITION.region}:${PARTITION.accountId}:key/${keys.get(spec)}`);
    if (alg.startsWith("ECDSA_")) expect(res.signature[0]).toBe(0x30); // DER SEQUENCE, not raw r‖s
    expect(nodeVerifies(spec, alg, message, res.signature)).toBe(true);
    expect(opensslVerify(spki.get(spec)!, alg, message, res.signature)).toBe(true);
    const tampered = Buffer.from(message);
    tampered[0]! ^= 1;
    expect(nodeVerifies(spec, alg, tampered, res.signature)).toBe(false);
    // And the service's own Verify (on the device) agrees.
    expect((await svc.verify({ keyId: keys.get(spec), message, signature: res.signature, signingAlgorithm: alg })).signatureValid).toBe(true);
  });

  it.each(CASES.filter(([, a]) => a !== "ED25519_SHA_512"))("%s %s, MessageType DIGEST signs the given digest", async (spec, alg) => {
    const hash = `sha${/_SHA_(\d+)$/.exec(alg)![1]}`;
    const digest = createHash(hash).update(message).digest();
    const res = await svc.sign({ keyId: keys.get(spec), message: digest, messageType: "DIGEST", signingAlgorithm: alg });
    expect(nodeVerifies(spec, alg, message, res.signature)).toBe(true);
    // RAW and DIGEST verify interchangeably: the same signed digest.
    await svc.verify({ keyId: keys.get(spec), message, signature: res.signature, signingAlgorithm: alg });
    await svc.verify({ keyId: keys.get(spec), message: digest, messageType: "DIGEST", signature: res.signature, signingAlgorithm: alg });
  });

  it("signs many messages concurrently on the thread pool, each signature valid", async () => {
    const msgs = Array.from({ length: 60 }, (_, i) => Buffer.from(`concurrent ${i}`));
    const sigs = await Promise.all(
      msgs.map((m, i) => svc.sign({ keyId: keys.get(i % 2 ? "RSA_2048" : "ECC_NIST_P256"), message: m, signingAlgorithm: i % 2 ? "RSASSA_PSS_SHA_256" : "ECDSA_SHA_256" })),
    );
    sigs.forEach((s, i) => expect(nodeVerifies(i % 2 ? "RSA_2048" : "ECC_NIST_P256", s.signingAlgorithm, msgs[i]!, s.signature)).toBe(true));
  });
});

describe("the event loop while RSA signs", () => {
  it("keeps turning: RSA-4096 signatures run on the thread pool, not between event-loop turns", async () => {
    // With synchronous C_Sign every signature would run back to back inside one turn (~5 ms each here);
    // on the thread pool the loop keeps spinning and the largest gap stays a fraction of the batch time.
    const keyId = keys.get("RSA_4096");
    let last = performance.now();
    let maxGap = 0;
    let spinning = true;
    const spin = () => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      if (spinning) setImmediate(spin);
    };
    setImmediate(spin);
    const started = performance.now();
    await Promise.all(Array.from({ length: 24 }, (_, i) => svc.sign({ keyId, message: Buffer.from(`m${i}`), signingAlgorithm: "RSASSA_PKCS1_V1_5_SHA_512" })));
    const total = performance.now() - started;
    spinning = false;
    maxGap = Math.max(maxGap, performance.now() - last); // a loop that never turned counts as one long gap
    expect(total).toBeGreaterThan(20); // 24 RSA-4096 signatures: long enough for the gap to mean something
    expect(maxGap).toBeLessThan(total / 3);
  });
});

describe("Verify on the device", () => {
  it.each(CASES)("%s %s: a tampered signature or message is KMSInvalidSignatureException", async (spec, alg) => {
    const keyId = keys.get(spec);
    const message = Buffer.from("verify me");
    const { signature } = await svc.sign({ keyId, message, signingAlgorithm: alg });
    const variants = [
      Buffer.concat([signature.subarray(0, signature.length - 1), Buffer.from([signature[signature.length - 1]! ^ 0x01])]),
      signature.subarray(0, signature.length - 1), // truncated
      Buffer.concat([signature, Buffer.from([0])]), // extended
      Buffer.alloc(signature.length, 0xff),
    ];
    for (const sig of variants) {
      expect(await code(svc.verify({ keyId, message, signature: sig, signingAlgorithm: alg }))).toBe("KMSInvalidSignatureException");
    }
    expect(await code(svc.verify({ keyId, message: Buffer.from("verify mE"), signature, signingAlgorithm: alg }))).toBe("KMSInvalidSignatureException");
  });

  it("rejects an ECDSA signature in raw r‖s form (not DER) as invalid", async () => {
    const key = keys.get("ECC_NIST_P256");
    const { signature } = await svc.sign({ keyId: key, message: Buffer.from("m"), signingAlgorithm: "ECDSA_SHA_256" });
    const raw = derToRaw(signature);
    expect(raw.length).toBe(64);
    expect(await code(svc.verify({ keyId: key, message: Buffer.from("m"), signature: raw, signingAlgorithm: "ECDSA_SHA_256" }))).toBe("KMSInvalidSignatureException");
  });
});

describe("Sign/Verify bad input", () => {
  const m = Buffer.from("x");
  it("names the AWS error for each mistake", async () => {
    const p256 = keys.get("ECC_NIST_P256")!;
    const ed = keys.get("ECC_NIST_EDWARDS25519")!;
    const rsa = keys.get("RSA_2048")!;
    const aes = (await svc.createKey({})).keyId;
    const hmac = (await svc.createKey({ keySpec: "HMAC_256", keyUsage: "GENERATE_VERIFY_MAC" })).keyId;
    const cases: [string, Promise<unknown>, string][] = [
      ["DIGEST of the wrong length", svc.sign({ keyId: p256, message: Buffer.alloc(31), messageType: "DIGEST", signingAlgorithm: "ECDSA_SHA_256" }), "ValidationException"],
      ["DIGEST for ECDSA_SHA_512 given 32 bytes", svc.sign({ keyId: keys.get("ECC_NIST_P521"), message: Buffer.alloc(32), messageType: "DIGEST", signingAlgorithm: "ECDSA_SHA_512" }), "ValidationException"],
      ["DIGEST with Ed25519", svc.sign({ keyId: ed, message: Buffer.alloc(64), messageType: "DIGEST", signingAlgorithm: "ED25519_SHA_512" }), "ValidationException"],
      ["EXTERNAL_MU without ML-DSA", svc.sign({ keyId: p256, message: Buffer.alloc(64), messageType: "EXTERNAL_MU", signingAlgorithm: "ECDSA_SHA_256" }), "ValidationException"],
      ["unknown MessageType", svc.sign({ keyId: p256, message: m, messageType: "HASHED", signingAlgorithm: "ECDSA_SHA_256" }), "ValidationException"],
      ["4097-byte message", svc.sign({ keyId: p256, message: Buffer.alloc(4097), signingAlgorithm: "ECDSA_SHA_256" }), "ValidationException"],
      ["empty message", svc.sign({ keyId: p256, message: Buffer.alloc(0), signingAlgorithm: "ECDSA_SHA_256" }), "ValidationException"],
      ["no SigningAlgorithm", svc.sign({ keyId: p256, message: m }), "ValidationException"],
      ["unknown SigningAlgorithm", svc.sign({ keyId: p256, message: m, signingAlgorithm: "ECDSA_SHA_1" }), "ValidationException"],
      ["ECDSA_SHA_384 on P-256", svc.sign({ keyId: p256, message: m, signingAlgorithm: "ECDSA_SHA_384" }), "InvalidKeyUsageException"],
      ["RSA algorithm on an EC key", svc.sign({ keyId: p256, message: m, signingAlgorithm: "RSASSA_PSS_SHA_256" }), "InvalidKeyUsageException"],
      ["ECDSA on an RSA key", svc.sign({ keyId: rsa, message: m, signingAlgorithm: "ECDSA_SHA_256" }), "InvalidKeyUsageException"],
      ["Ed25519ph (not offered)", svc.sign({ keyId: ed, message: Buffer.alloc(64), messageType: "DIGEST", signingAlgorithm: "ED25519_PH_SHA_512" }), "InvalidKeyUsageException"],
      ["a symmetric key", svc.sign({ keyId: aes, message: m, signingAlgorithm: "ECDSA_SHA_256" }), "InvalidKeyUsageException"],
      ["an HMAC key", svc.verify({ keyId: hmac, message: m, signature: Buffer.alloc(32), signingAlgorithm: "ECDSA_SHA_256" }), "InvalidKeyUsageException"],
      ["an empty signature", svc.verify({ keyId: p256, message: m, signature: Buffer.alloc(0), signingAlgorithm: "ECDSA_SHA_256" }), "ValidationException"],
      ["a 6145-byte signature", svc.verify({ keyId: p256, message: m, signature: Buffer.alloc(6145), signingAlgorithm: "ECDSA_SHA_256" }), "ValidationException"],
      ["an unknown key", svc.sign({ keyId: "00000000-0000-4000-8000-000000000000", message: m, signingAlgorithm: "ECDSA_SHA_256" }), "NotFoundException"],
      ["DryRun", svc.sign({ keyId: p256, message: m, signingAlgorithm: "ECDSA_SHA_256", dryRun: true }), "DryRunOperationException"],
    ];
    for (const [name, p, want] of cases) expect({ name, got: await code(p) }).toEqual({ name, got: want });
  });

  it("refuses a disabled key for Sign, Verify and GetPublicKey", async () => {
    const keyId = (await svc.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    const { signature } = await svc.sign({ keyId, message: m, signingAlgorithm: "ECDSA_SHA_256" });
    expect(await t.metadata.updateKeyState(keyId, "Enabled", "Disabled")).toBe(true);
    expect(await code(svc.sign({ keyId, message: m, signingAlgorithm: "ECDSA_SHA_256" }))).toBe("DisabledException");
    expect(await code(svc.verify({ keyId, message: m, signature, signingAlgorithm: "ECDSA_SHA_256" }))).toBe("DisabledException");
    expect(await code(svc.getPublicKey({ keyId }))).toBe("DisabledException");
    await t.metadata.updateKeyState(keyId, "Disabled", "Enabled");
    expect((await svc.verify({ keyId, message: m, signature, signingAlgorithm: "ECDSA_SHA_256" })).signatureValid).toBe(true);
  });
});

/** DER ECDSA → raw r‖s (32-byte halves), independently of the code under test. */
function derToRaw(der: Buffer): Buffer {
  const out = Buffer.alloc(64);
  let off = 2;
  for (let i = 0; i < 2; i++) {
    const len = der[off + 1]!;
    let v = der.subarray(off + 2, off + 2 + len);
    if (v[0] === 0) v = v.subarray(1);
    v.copy(out, i * 32 + 32 - v.length);
    off += 2 + len;
  }
  return out;
}
