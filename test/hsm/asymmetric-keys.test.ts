import { createHash, createPublicKey } from "node:crypto";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import { keyLabel, QUARANTINE_PREFIX } from "../../src/hsm/objects/templates.js";
import { reconcile } from "../../src/kms/reconcile.js";
import type { KmsService } from "../../src/kms/service.js";
import { KEY_SPECS, type KeySpec, type KeyUsage } from "../../src/kms/types.js";
import { openService, type TestService } from "../helpers/service.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("asym-keys");
let t: TestService;
let svc: KmsService;
let inspect: TokenInspector;

/** One key of every spec and usage the service creates (RSA-4096 included: made once, here). */
const SPECS: [KeySpec, KeyUsage][] = [
  ["SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"],
  ["RSA_2048", "ENCRYPT_DECRYPT"],
  ["RSA_2048", "SIGN_VERIFY"],
  ["RSA_3072", "SIGN_VERIFY"],
  ["RSA_4096", "ENCRYPT_DECRYPT"],
  ["ECC_NIST_P256", "SIGN_VERIFY"],
  ["ECC_NIST_P384", "SIGN_VERIFY"],
  ["ECC_NIST_P521", "SIGN_VERIFY"],
  ["ECC_SECG_P256K1", "SIGN_VERIFY"],
  ["ECC_NIST_EDWARDS25519", "SIGN_VERIFY"],
  ["HMAC_224", "GENERATE_VERIFY_MAC"],
  ["HMAC_256", "GENERATE_VERIFY_MAC"],
  ["HMAC_384", "GENERATE_VERIFY_MAC"],
  ["HMAC_512", "GENERATE_VERIFY_MAC"],
];
const created = new Map<string, string>(); // "spec/usage" -> key id

beforeAll(async () => {
  t = openService(token);
  svc = t.service;
  inspect = new TokenInspector(token);
  for (const [keySpec, keyUsage] of SPECS) created.set(`${keySpec}/${keyUsage}`, (await svc.createKey({ keySpec, keyUsage })).keyId);
}, 120_000);
afterAll(async () => {
  await t.metadata.close();
  await t.store.close();
  token.remove();
});

const SENSITIVE_READS: Record<string, number[]> = {
  RSA: [pkcs11js.CKA_PRIVATE_EXPONENT, pkcs11js.CKA_PRIME_1, pkcs11js.CKA_PRIME_2, pkcs11js.CKA_EXPONENT_1, pkcs11js.CKA_COEFFICIENT],
  EC: [pkcs11js.CKA_VALUE],
  SECRET: [pkcs11js.CKA_VALUE],
};

describe("capabilities probed at open", () => {
  it("lists every spec but SM2 on SoftHSM2 and picks the OAEP-SHA-256 fallback under 'auto'", () => {
    expect([...t.store.capabilities.keySpecs].sort()).toEqual(KEY_SPECS.filter((s) => s !== "SM2").sort());
    expect(t.store.capabilities.softwareToken).toBe(true);
    expect(t.store.capabilities.oaepSha256OnDevice).toBe(false); // SoftHSM2 2.6.1: SHA-1 only
    expect(t.store.capabilities.rsaOaepSha256).toBe("fallback");
  });

  it.each([
    ["allow", "fallback"],
    ["deny", "unsupported"],
    ["auto", "fallback"],
  ] as const)("rsaOaepSha256Fallback %s → %s", async (setting, path) => {
    const s = Pkcs11KeyStore.open("x", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 1, rsaOaepSha256Fallback: setting });
    expect(s.capabilities.rsaOaepSha256).toBe(path);
    await s.close();
  });

  it("reports the path in DescribeKey for RSA encryption keys only", async () => {
    expect((await svc.describeKey({ keyId: created.get("RSA_2048/ENCRYPT_DECRYPT") })).rsaOaepSha256Decryption).toBe("fallback");
    expect((await svc.describeKey({ keyId: created.get("RSA_2048/SIGN_VERIFY") })).rsaOaepSha256Decryption).toBeUndefined();
    expect((await svc.describeKey({ keyId: created.get("SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT") })).rsaOaepSha256Decryption).toBeUndefined();
  });
});

describe("CreateKey / DescribeKey for every spec", () => {
  it.each(SPECS)("%s %s: metadata as AWS describes it", async (keySpec, keyUsage) => {
    const m = await svc.describeKey({ keyId: created.get(`${keySpec}/${keyUsage}`) });
    expect(m).toMatchObject({ keySpec, keyUsage, keyState: "Enabled", enabled: true });
    const lists = [m.encryptionAlgorithms.length > 0, m.signingAlgorithms.length > 0, m.macAlgorithms.length > 0];
    expect(lists.filter(Boolean).length).toBe(1); // exactly the list of its usage
    if (keySpec === "ECC_NIST_P384") expect(m.signingAlgorithms).toEqual(["ECDSA_SHA_384"]);
    if (keySpec === "HMAC_224") expect(m.macAlgorithms).toEqual(["HMAC_SHA_224"]);
    if (keySpec.startsWith("RSA_") && keyUsage === "ENCRYPT_DECRYPT") {
      expect(m.encryptionAlgorithms).toEqual(["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]);
    }
  });

  it("GetPublicKey returns an SPKI of the right type and size", async () => {
    for (const [keySpec, keyUsage] of SPECS.filter(([s]) => s.startsWith("RSA_") || s.startsWith("ECC_"))) {
      const res = await svc.getPublicKey({ keyId: created.get(`${keySpec}/${keyUsage}`) });
      const key = createPublicKey({ key: res.publicKey, format: "der", type: "spki" });
      const d = key.asymmetricKeyDetails!;
      const expected: Record<string, unknown> = {
        RSA_2048: { modulusLength: 2048 },
        RSA_3072: { modulusLength: 3072 },
        RSA_4096: { modulusLength: 4096 },
        ECC_NIST_P256: { namedCurve: "prime256v1" },
        ECC_NIST_P384: { namedCurve: "secp384r1" },
        ECC_NIST_P521: { namedCurve: "secp521r1" },
        ECC_SECG_P256K1: { namedCurve: "secp256k1" },
        ECC_NIST_EDWARDS25519: {},
      };
      expect({ keySpec, d }).toMatchObject({ keySpec, d: expected[keySpec] });
      if (keySpec === "ECC_NIST_EDWARDS25519") expect(key.asymmetricKeyType).toBe("ed25519");
      expect(res).toMatchObject({ keySpec, keyUsage });
    }
  });

  it("GetPublicKey on a symmetric or HMAC key is UnsupportedOperationException", async () => {
    for (const k of ["SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT", "HMAC_256/GENERATE_VERIFY_MAC"]) {
      await expect(svc.getPublicKey({ keyId: created.get(k) })).rejects.toMatchObject({ code: "UnsupportedOperationException" });
    }
  });
});

describe("non-exportability of every key spec", () => {
  it("private keys and HMAC keys are private token objects, sensitive and never extractable", () => {
    const privates = inspect.objects(pkcs11js.CKO_PRIVATE_KEY).filter((o) => o.label.startsWith("p11kms:"));
    const secrets = inspect.secretKeys().filter((o) => o.label.startsWith("p11kms:"));
    const pairs = SPECS.filter(([s]) => s.startsWith("RSA_") || s.startsWith("ECC_"));
    expect(privates.length).toBe(pairs.length);
    expect(secrets.length).toBe(SPECS.length - pairs.length);
    for (const [spec, usage] of SPECS) {
      const label = keyLabel(created.get(`${spec}/${usage}`)!, 1);
      const h = [...privates, ...secrets].find((o) => o.label === label)!.handle;
      for (const [attr, want] of [
        [pkcs11js.CKA_TOKEN, true],
        [pkcs11js.CKA_PRIVATE, true],
        [pkcs11js.CKA_SENSITIVE, true],
        [pkcs11js.CKA_ALWAYS_SENSITIVE, true],
        [pkcs11js.CKA_EXTRACTABLE, false],
        [pkcs11js.CKA_NEVER_EXTRACTABLE, true],
        [pkcs11js.CKA_DERIVE, false],
      ] as const) {
        expect({ spec, attr, v: inspect.bool(h, attr) }).toEqual({ spec, attr, v: want });
      }
      // The private half may do exactly what the KeyUsage says.
      if (usage === "SIGN_VERIFY") expect([inspect.bool(h, pkcs11js.CKA_SIGN), inspect.bool(h, pkcs11js.CKA_DECRYPT)]).toEqual([true, false]);
      if (spec.startsWith("RSA_") && usage === "ENCRYPT_DECRYPT") {
        expect([inspect.bool(h, pkcs11js.CKA_SIGN), inspect.bool(h, pkcs11js.CKA_DECRYPT)]).toEqual([false, true]);
      }
    }
  });

  it("refuses to reveal or wrap out any private or HMAC key", () => {
    const wrapper = inspect.wrappingKey();
    for (const [spec, usage] of SPECS) {
      const label = keyLabel(created.get(`${spec}/${usage}`)!, 1);
      const all = [...inspect.objects(pkcs11js.CKO_PRIVATE_KEY), ...inspect.secretKeys()];
      const h = all.find((o) => o.label === label)!.handle;
      const kind = spec.startsWith("RSA_") ? "RSA" : spec.startsWith("ECC_") ? "EC" : "SECRET";
      for (const attr of SENSITIVE_READS[kind]!) {
        expect({ spec, attr, rv: inspect.rv(() => inspect.mod.C_GetAttributeValue(inspect.session, h, [{ type: attr }])) }).toEqual({ spec, attr, rv: 0x11 });
      }
      for (const mechanism of [pkcs11js.CKM_AES_KEY_WRAP_PAD, 0x210a /* KWP */]) {
        const rv = inspect.rv(() => inspect.mod.C_WrapKey(inspect.session, { mechanism }, wrapper, h, Buffer.alloc(8192)));
        // CKR_KEY_UNEXTRACTABLE; SoftHSM2 answers CKR_KEY_NOT_WRAPPABLE first for EdDSA keys. Either way: no bytes.
        expect({ spec, mechanism, refused: rv === 0x6a || rv === 0x69 }).toEqual({ spec, mechanism, refused: true });
      }
    }
  });

  it("limits every private and HMAC key to the mechanisms p11kms uses (CKA_ALLOWED_MECHANISMS, enforced)", () => {
    expect(t.store.capabilities.allowedMechanisms).toBe(true);
    const all = () => [...inspect.objects(pkcs11js.CKO_PRIVATE_KEY), ...inspect.secretKeys()];
    const handle = (spec: string, usage: string) => all().find((o) => o.label === keyLabel(created.get(`${spec}/${usage}`)!, 1))!.handle;
    const allowed = (h: pkcs11js.Handle) => {
      const v = inspect.mod.C_GetAttributeValue(inspect.session, h, [{ type: pkcs11js.CKA_ALLOWED_MECHANISMS }])[0]!.value!;
      return Array.from({ length: v.length / 8 }, (_, i) => Number(v.readBigUInt64LE(8 * i))).sort((a, b) => a - b);
    };
    expect(allowed(handle("RSA_2048", "SIGN_VERIFY"))).toEqual([pkcs11js.CKM_RSA_PKCS, pkcs11js.CKM_RSA_PKCS_PSS].sort((a, b) => a - b));
    expect(allowed(handle("RSA_2048", "ENCRYPT_DECRYPT"))).toEqual([pkcs11js.CKM_RSA_PKCS_OAEP, pkcs11js.CKM_RSA_X_509].sort((a, b) => a - b)); // "fallback" store
    expect(allowed(handle("ECC_NIST_P384", "SIGN_VERIFY"))).toEqual([pkcs11js.CKM_ECDSA]);
    expect(allowed(handle("ECC_NIST_EDWARDS25519", "SIGN_VERIFY"))).toEqual([0x1057]);
    expect(allowed(handle("HMAC_384", "GENERATE_VERIFY_MAC"))).toEqual([pkcs11js.CKM_SHA384_HMAC]);
    // The token refuses what the list leaves out: no PKCS#1 v1.5 decryption oracle, no HMAC with another hash.
    const refused = (fn: () => void) => inspect.rv(fn);
    expect(refused(() => inspect.mod.C_DecryptInit(inspect.session, { mechanism: pkcs11js.CKM_RSA_PKCS }, handle("RSA_2048", "ENCRYPT_DECRYPT")))).toBe(0x70);
    expect(refused(() => inspect.mod.C_SignInit(inspect.session, { mechanism: pkcs11js.CKM_SHA256_HMAC }, handle("HMAC_384", "GENERATE_VERIFY_MAC")))).toBe(0x70);
    expect(refused(() => inspect.mod.C_SignInit(inspect.session, { mechanism: pkcs11js.CKM_ECDSA }, handle("ECC_NIST_EDWARDS25519", "SIGN_VERIFY")))).toBe(0x70);
  });

  it("public keys are token objects that can only verify or encrypt", () => {
    const publics = inspect.objects(pkcs11js.CKO_PUBLIC_KEY).filter((o) => o.label.startsWith("p11kms:"));
    expect(publics.length).toBe(SPECS.filter(([s]) => s.startsWith("RSA_") || s.startsWith("ECC_")).length);
    for (const { handle } of publics) {
      expect(inspect.bool(handle, pkcs11js.CKA_TOKEN)).toBe(true);
      expect(inspect.bool(handle, pkcs11js.CKA_WRAP)).toBe(false);
      expect(inspect.bool(handle, pkcs11js.CKA_VERIFY) !== inspect.bool(handle, pkcs11js.CKA_ENCRYPT)).toBe(true);
    }
  });
});

describe("start-up reconciliation with key pairs", () => {
  it("finds pairs again after a restart, quarantines orphan pairs whole, marks half-missing pairs Unavailable", async () => {
    const keep = created.get("ECC_NIST_P256/SIGN_VERIFY")!;
    const sig = await svc.sign({ keyId: keep, message: Buffer.from("before restart"), signingAlgorithm: "ECDSA_SHA_256" });
    // An orphan pair: objects with no record.
    const orphan = { keyId: "44444444-4444-4444-8444-444444444444", version: 1 };
    await t.store.generateKeyPair(orphan, "ECC_NIST_P256", "SIGN_VERIFY");
    // A pair whose public half vanished: the key cannot verify any more.
    const halfId = (await svc.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    const pub = inspect.objects(pkcs11js.CKO_PUBLIC_KEY).find((o) => o.label === keyLabel(halfId, 1))!.handle;
    inspect.mod.C_DestroyObject(inspect.session, pub);

    const reopened = Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 2 });
    const stores = new Map([["default", reopened]]);
    const report = await reconcile(t.metadata, stores, { warn: () => undefined, error: () => undefined });
    expect(report.quarantined).toEqual([orphan]);
    expect(report.missingMaterial).toEqual([halfId]);
    expect(report.abortedCreations).toEqual([]);
    for (const cls of [pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_PUBLIC_KEY]) {
      const labels = inspect.objects(cls).map((o) => o.label);
      expect(labels).toContain(QUARANTINE_PREFIX + keyLabel(orphan.keyId, 1));
      expect(labels).not.toContain(keyLabel(orphan.keyId, 1));
    }
    expect((await t.metadata.getKey(halfId))!.keyState).toBe("Unavailable");
    // Every other key survived the restart with its material: the reopened store still verifies.
    expect(await reopened.verify({ keyId: keep, version: 1 }, "ECDSA_SHA_256", hashOf("before restart"), sig.signature)).toBe(true);
    for (const [spec, usage] of SPECS) expect(reopened.hasKey({ keyId: created.get(`${spec}/${usage}`)!, version: 1 })).toBe(true);
    await reopened.close();
  });
});

function hashOf(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
