import pkcs11js from "pkcs11js";
import { describe, expect, it } from "vitest";
import {
  QUARANTINE_PREFIX,
  aes256KeyTemplate,
  hmacKeyTemplate,
  keyLabel,
  keyObjectId,
  keyPairTemplates,
  mechanismList,
  parseKeyLabel,
} from "../../src/hsm/objects/templates.js";

const KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab";

describe("keyLabel / parseKeyLabel", () => {
  it("formats the documented label", () => {
    expect(keyLabel(KEY_ID, 3)).toBe(`p11kms:${KEY_ID}:v3`);
  });

  it.each([1, 2, 10, 4242, 0xffffffff])("round-trips version %i", (version) => {
    expect(parseKeyLabel(keyLabel(KEY_ID, version))).toEqual({ keyId: KEY_ID, version });
  });

  it("returns the version as a number", () => {
    expect(typeof parseKeyLabel(keyLabel(KEY_ID, 12))?.version).toBe("number");
  });

  it.each([
    ["another application's label", "my-key"],
    ["the empty label", ""],
    ["a quarantined label", `${QUARANTINE_PREFIX}p11kms:${KEY_ID}:v1`],
    ["version 0", `p11kms:${KEY_ID}:v0`],
    ["a leading zero", `p11kms:${KEY_ID}:v01`],
    ["a negative version", `p11kms:${KEY_ID}:v-1`],
    ["no version", `p11kms:${KEY_ID}`],
    ["an empty version", `p11kms:${KEY_ID}:v`],
    ["an 11-digit version", `p11kms:${KEY_ID}:v12345678901`],
    ["an upper-case key id", `p11kms:${KEY_ID.toUpperCase()}:v1`],
    ["a key id without dashes", `p11kms:${KEY_ID.replaceAll("-", "")}:v1`],
    ["another prefix", `p11kmsx:${KEY_ID}:v1`],
    ["trailing text", `p11kms:${KEY_ID}:v1 `],
    ["leading text", ` p11kms:${KEY_ID}:v1`],
    ["a trailing newline", `p11kms:${KEY_ID}:v1\n`],
  ])("returns undefined for %s", (_what, label) => {
    expect(parseKeyLabel(label)).toBeUndefined();
  });

  it("quarantine prefix is as documented", () => {
    expect(QUARANTINE_PREFIX).toBe("p11kms-quarantine:");
  });
});

describe("keyObjectId", () => {
  it("is the 16 key id bytes followed by the u32 BE version", () => {
    const id = keyObjectId(KEY_ID, 0x01020304);
    expect(id.length).toBe(20);
    expect(id.toString("hex")).toBe("1234abcd12ab34cd56ef1234567890ab" + "01020304");
  });

  it("differs between versions of the same key", () => {
    expect(keyObjectId(KEY_ID, 1).equals(keyObjectId(KEY_ID, 2))).toBe(false);
  });
});

describe("aes256KeyTemplate", () => {
  const id = keyObjectId(KEY_ID, 1);
  const label = keyLabel(KEY_ID, 1);
  const template = aes256KeyTemplate(label, id);
  const attr = (type: number) => template.filter((a) => a.type === type).map((a) => a.value);

  it("sets each attribute once", () => {
    const types = template.map((a) => a.type);
    expect(new Set(types).size).toBe(types.length);
  });

  it.each([
    ["CKA_CLASS", pkcs11js.CKA_CLASS, pkcs11js.CKO_SECRET_KEY],
    ["CKA_KEY_TYPE", pkcs11js.CKA_KEY_TYPE, pkcs11js.CKK_AES],
    ["CKA_VALUE_LEN", pkcs11js.CKA_VALUE_LEN, 32],
    ["CKA_TOKEN", pkcs11js.CKA_TOKEN, true],
    ["CKA_PRIVATE", pkcs11js.CKA_PRIVATE, true],
    ["CKA_SENSITIVE", pkcs11js.CKA_SENSITIVE, true],
    ["CKA_EXTRACTABLE", pkcs11js.CKA_EXTRACTABLE, false],
    ["CKA_ENCRYPT", pkcs11js.CKA_ENCRYPT, true],
    ["CKA_DECRYPT", pkcs11js.CKA_DECRYPT, true],
    ["CKA_WRAP", pkcs11js.CKA_WRAP, false],
    ["CKA_UNWRAP", pkcs11js.CKA_UNWRAP, false],
    ["CKA_SIGN", pkcs11js.CKA_SIGN, false],
    ["CKA_VERIFY", pkcs11js.CKA_VERIFY, false],
    ["CKA_DERIVE", pkcs11js.CKA_DERIVE, false],
  ])("sets %s", (_name, type, value) => {
    expect(attr(type)).toEqual([value]);
  });

  it("carries the given label and id", () => {
    expect(attr(pkcs11js.CKA_LABEL)).toEqual([label]);
    const [value] = attr(pkcs11js.CKA_ID);
    expect(Buffer.isBuffer(value)).toBe(true);
    expect((value as Buffer).toString("hex")).toBe(id.toString("hex"));
  });

  it("does not set CKA_VALUE (the device generates the key)", () => {
    expect(attr(pkcs11js.CKA_VALUE)).toEqual([]);
  });

  it("has exactly the 16 expected attributes", () => {
    expect(template).toHaveLength(16);
  });
});

describe("key pair and HMAC templates", () => {
  const id = keyObjectId(KEY_ID, 1);
  const label = keyLabel(KEY_ID, 1);
  const value = (t: pkcs11js.Template, type: number) => t.filter((a) => a.type === type).map((a) => a.value);
  const mechs = (t: pkcs11js.Template) => {
    const [v] = value(t, pkcs11js.CKA_ALLOWED_MECHANISMS) as Buffer[];
    return v ? Array.from({ length: v.length / 8 }, (_, i) => Number(v.readBigUInt64LE(8 * i))) : undefined;
  };

  it("mechanismList encodes CK_ULONGs, 8 bytes little-endian", () => {
    expect(mechanismList(0x9, 0x3).toString("hex")).toBe("0900000000000000" + "0300000000000000");
  });

  it.each([
    ["RSA_2048", "SIGN_VERIFY", true, false],
    ["RSA_4096", "ENCRYPT_DECRYPT", false, true],
    ["ECC_NIST_P256", "SIGN_VERIFY", true, false],
    ["ECC_NIST_EDWARDS25519", "SIGN_VERIFY", true, false],
  ] as const)("%s %s: private half sensitive, unextractable, sign=%s decrypt=%s, no wrap/unwrap/derive", (spec, usage, sign, decrypt) => {
    const t = keyPairTemplates(spec, usage, label, id, { restrict: true, rawRsa: false });
    for (const [type, want] of [
      [pkcs11js.CKA_CLASS, pkcs11js.CKO_PRIVATE_KEY],
      [pkcs11js.CKA_TOKEN, true],
      [pkcs11js.CKA_PRIVATE, true],
      [pkcs11js.CKA_SENSITIVE, true],
      [pkcs11js.CKA_EXTRACTABLE, false],
      [pkcs11js.CKA_SIGN, sign],
      [pkcs11js.CKA_DECRYPT, decrypt],
      [pkcs11js.CKA_UNWRAP, false],
      [pkcs11js.CKA_DERIVE, false],
      [pkcs11js.CKA_LABEL, label],
    ] as const) {
      expect({ type, v: value(t.privateKey, type) }).toEqual({ type, v: [want] });
    }
    expect(value(t.publicKey, pkcs11js.CKA_VERIFY)).toEqual([sign]);
    expect(value(t.publicKey, pkcs11js.CKA_ENCRYPT)).toEqual([decrypt]);
    expect(value(t.publicKey, pkcs11js.CKA_WRAP)).toEqual([false]);
    for (const half of [t.privateKey, t.publicKey]) {
      const types = half.map((a) => a.type);
      expect(new Set(types).size).toBe(types.length);
    }
  });

  it("allows raw RSA on decryption keys only when the fallback is in use, and nothing when not restricting", () => {
    expect(mechs(keyPairTemplates("RSA_2048", "ENCRYPT_DECRYPT", label, id, { restrict: true, rawRsa: false }).privateKey)).toEqual([pkcs11js.CKM_RSA_PKCS_OAEP]);
    expect(mechs(keyPairTemplates("RSA_2048", "ENCRYPT_DECRYPT", label, id, { restrict: true, rawRsa: true }).privateKey)).toEqual([pkcs11js.CKM_RSA_PKCS_OAEP, pkcs11js.CKM_RSA_X_509]);
    expect(mechs(keyPairTemplates("RSA_2048", "SIGN_VERIFY", label, id, { restrict: true, rawRsa: true }).privateKey)).toEqual([pkcs11js.CKM_RSA_PKCS, pkcs11js.CKM_RSA_PKCS_PSS]);
    expect(mechs(keyPairTemplates("ECC_NIST_P521", "SIGN_VERIFY", label, id, { restrict: false, rawRsa: true }).privateKey)).toBeUndefined();
  });

  it("HMAC keys: a generic secret of the digest length, sign+verify, its own HMAC mechanism only", () => {
    const t = hmacKeyTemplate("HMAC_224", label, id, { restrict: true });
    expect(value(t, pkcs11js.CKA_KEY_TYPE)).toEqual([pkcs11js.CKK_GENERIC_SECRET]);
    expect(value(t, pkcs11js.CKA_VALUE_LEN)).toEqual([28]);
    expect([value(t, pkcs11js.CKA_SIGN), value(t, pkcs11js.CKA_VERIFY), value(t, pkcs11js.CKA_ENCRYPT)]).toEqual([[true], [true], [false]]);
    expect([value(t, pkcs11js.CKA_SENSITIVE), value(t, pkcs11js.CKA_EXTRACTABLE)]).toEqual([[true], [false]]);
    expect(mechs(t)).toEqual([pkcs11js.CKM_SHA224_HMAC]);
    expect(mechs(hmacKeyTemplate("HMAC_512", label, id, { restrict: false }))).toBeUndefined();
  });
});
