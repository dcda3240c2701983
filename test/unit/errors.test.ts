import { describe, expect, it } from "vitest";
import { KMS_ERROR_CODES, KmsError, toKmsError, validation } from "../../src/kms/errors.js";

describe("KmsError", () => {
  it("carries code, message, name and cause", () => {
    const cause = new Error("db locked");
    const err = new KmsError("NotFoundException", "Key x is not found.", { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("KmsError");
    expect(err.code).toBe("NotFoundException");
    expect(err.message).toBe("Key x is not found.");
    expect(err.cause).toBe(cause);
  });

  it("validation() is a ValidationException without cause", () => {
    const err = validation("Plaintext is required.");
    expect(err).toBeInstanceOf(KmsError);
    expect(err.code).toBe("ValidationException");
    expect(err.message).toBe("Plaintext is required.");
    expect(err.cause).toBeUndefined();
  });
});

describe("KMS_ERROR_CODES", () => {
  it("has 30 distinct AWS exception names", () => {
    expect(KMS_ERROR_CODES.length).toBe(30);
    expect(new Set(KMS_ERROR_CODES).size).toBe(KMS_ERROR_CODES.length);
    for (const c of KMS_ERROR_CODES) expect(c).toMatch(/^[A-Z][A-Za-z]*Exception$/);
  });
});

describe("toKmsError", () => {
  it("returns a KmsError unchanged (same instance)", () => {
    const err = new KmsError("DisabledException", "Key k is disabled.");
    expect(toKmsError(err)).toBe(err);
  });

  it("turns any other Error into a generic KMSInternalException that keeps the original as cause", () => {
    const original = new Error("CKR_DEVICE_ERROR reading /var/lib/p11kms/pin: secret-detail");
    const err = toKmsError(original);
    expect(err).toBeInstanceOf(KmsError);
    expect(err.code).toBe("KMSInternalException");
    expect(err.message).toBe("The request failed due to an internal error.");
    expect(err.message).not.toContain("secret-detail");
    expect(err.message).not.toContain("CKR_DEVICE_ERROR");
    expect(err.cause).toBe(original);
  });

  it.each([["a string", "boom: secret"], ["undefined", undefined], ["an object", { code: 0x30 }], ["a number", 48]])(
    "wraps %s the same way",
    (_what, value) => {
      const err = toKmsError(value);
      expect(err.code).toBe("KMSInternalException");
      expect(err.message).toBe("The request failed due to an internal error.");
      expect(err.cause).toBe(value);
    },
  );

  it("does not trust an Error that merely looks like a KmsError", () => {
    const lookalike = Object.assign(new Error("leak"), { name: "KmsError", code: "NotFoundException" });
    const err = toKmsError(lookalike);
    expect(err).not.toBe(lookalike);
    expect(err.code).toBe("KMSInternalException");
    expect(err.cause).toBe(lookalike);
  });
});
