import { generateKeyPairSync, sign, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DIGEST_INFO_PREFIX, ecdsaDerToRaw, ecdsaRawToDer, ecPointValue } from "../../src/hsm/objects/der.js";

describe("ECDSA signature encodings", () => {
  for (const [curve, size] of [["prime256v1", 32], ["secp384r1", 48], ["secp521r1", 66]] as const) {
    it(`${curve}: raw r‖s from node (ieee-p1363) → DER that node verifies, and back`, () => {
      const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: curve });
      for (let i = 0; i < 40; i++) {
        const msg = Buffer.from(`m${i}`);
        const raw = sign("sha256", msg, { key: privateKey, dsaEncoding: "ieee-p1363" });
        expect(raw.length).toBe(2 * size);
        const der = ecdsaRawToDer(raw);
        expect(verify("sha256", msg, publicKey, der)).toBe(true);
        expect(ecdsaDerToRaw(der, size)!.equals(raw)).toBe(true);
        // And node's own DER decodes to the same raw value.
        const nodeDer = sign("sha256", msg, privateKey);
        expect(verify("sha256", msg, { key: publicKey, dsaEncoding: "ieee-p1363" }, ecdsaDerToRaw(nodeDer, size)!)).toBe(true);
      }
    });
  }

  it("encodes integers minimally: high bit → leading zero, leading zeros dropped", () => {
    const raw = Buffer.concat([Buffer.from([0x80, ...Array(31).fill(1)]), Buffer.from([0, 0, 0x7f, ...Array(29).fill(2)])]);
    const der = ecdsaRawToDer(raw);
    expect(der.subarray(0, 6).toString("hex")).toBe("30" + (der.length - 2).toString(16) + "022100" + "80");
    expect(ecdsaDerToRaw(der, 32)!.equals(raw)).toBe(true);
  });

  it.each([
    ["empty", ""],
    ["not a sequence", "310602010102010102"],
    ["trailing bytes", "30060201010201010000"],
    ["negative r", "3006020181020101"],
    ["non-minimal r", "300702020001020101"],
    ["one integer only", "3003020101"],
    ["r too large for the curve", "3026022101" + "00".repeat(32) + "020101"],
    ["length beyond the buffer", "3009020101020101"],
    ["long-form length that could be short", "30810602010102010100"],
  ])("refuses %s", (_name, hex) => {
    expect(ecdsaDerToRaw(Buffer.from(hex, "hex"), 32)).toBeUndefined();
  });
});

describe("ecPointValue", () => {
  const bare = Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 0x3f)]);
  it("unwraps the DER OCTET STRING PKCS#11 specifies", () => {
    expect(ecPointValue(Buffer.concat([Buffer.from([4, 65]), bare]), 65).equals(bare)).toBe(true);
  });
  it("takes a bare point of the expected length as it is, even when it looks like DER", () => {
    const tricky = Buffer.from(bare);
    tricky[1] = 63; // 04 3f ... parses as an OCTET STRING of 63 bytes
    expect(ecPointValue(tricky, 65).equals(tricky)).toBe(true);
  });
  it("refuses anything else", () => {
    expect(() => ecPointValue(Buffer.alloc(10), 65)).toThrow(/CKA_EC_POINT/);
  });
});

describe("DIGEST_INFO_PREFIX", () => {
  it("is what node puts before the digest in a PKCS#1 v1.5 signature", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const { publicDecrypt, constants, createHash } = await import("node:crypto");
    for (const hash of ["sha256", "sha384", "sha512"] as const) {
      const sig = sign(hash, Buffer.from("x"), privateKey);
      const em = publicDecrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, sig);
      expect(em.equals(Buffer.concat([DIGEST_INFO_PREFIX[hash], createHash(hash).update("x").digest()]))).toBe(true);
    }
  });
});
