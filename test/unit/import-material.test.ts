import { describe, expect, it } from "vitest";
import { IMPORTABLE_KEY_SPECS, checkWrappingFits, secretLengths, wrongLength } from "../../src/kms/import-material.js";

const code = (fn: () => void) => {
  try {
    fn();
    return "ok";
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe("imported key material rules (AWS KMS)", () => {
  it("accepts 256-bit symmetric material and HMAC material from the digest length to the block size", () => {
    expect(secretLengths("SYMMETRIC_DEFAULT")).toEqual({ min: 32, max: 32 });
    expect(secretLengths("HMAC_224")).toEqual({ min: 28, max: 64 });
    expect(secretLengths("HMAC_256")).toEqual({ min: 32, max: 64 });
    expect(secretLengths("HMAC_384")).toEqual({ min: 48, max: 128 });
    expect(secretLengths("HMAC_512")).toEqual({ min: 64, max: 128 });
    expect(secretLengths("RSA_2048")).toBeUndefined();
    expect(wrongLength("HMAC_256").message).toContain("256 to 512 bits (32 to 64 bytes)");
    expect(wrongLength("SYMMETRIC_DEFAULT").code).toBe("IncorrectKeyMaterialException");
  });

  it("takes RSA private keys only with RSA_AES_KEY_WRAP_*, and P-521 not with OAEP under RSA_2048", () => {
    expect(code(() => checkWrappingFits("RSA_2048", "RSAES_OAEP_SHA_1", "RSA_4096"))).toBe("ValidationException");
    expect(code(() => checkWrappingFits("RSA_4096", "RSAES_OAEP_SHA_256", "RSA_4096"))).toBe("ValidationException");
    expect(code(() => checkWrappingFits("RSA_4096", "RSA_AES_KEY_WRAP_SHA_256", "RSA_2048"))).toBe("ok");
    expect(code(() => checkWrappingFits("ECC_NIST_P521", "RSAES_OAEP_SHA_1", "RSA_2048"))).toBe("ValidationException");
    expect(code(() => checkWrappingFits("ECC_NIST_P521", "RSAES_OAEP_SHA_1", "RSA_3072"))).toBe("ok");
    expect(code(() => checkWrappingFits("ECC_NIST_P521", "RSA_AES_KEY_WRAP_SHA_1", "RSA_2048"))).toBe("ok");
    expect(code(() => checkWrappingFits("HMAC_512", "RSAES_OAEP_SHA_256", "RSA_2048"))).toBe("ok");
  });

  it("imports every spec but Ed25519 (SoftHSM2 cannot unwrap it) and SM2 (China Regions)", () => {
    expect(IMPORTABLE_KEY_SPECS).not.toContain("ECC_NIST_EDWARDS25519");
    expect(IMPORTABLE_KEY_SPECS).not.toContain("SM2");
    expect(IMPORTABLE_KEY_SPECS).toContain("ECC_SECG_P256K1");
  });
});
