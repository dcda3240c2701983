import pkcs11js from "pkcs11js";
import { describe, expect, it } from "vitest";
import { QUARANTINE_PREFIX, aes256KeyTemplate, keyLabel, keyObjectId, parseKeyLabel } from "../../src/hsm/templates.js";

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
