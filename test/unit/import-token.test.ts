import { describe, expect, it } from "vitest";
import { checkImportClaims, decodeImportTokenPayload, encodeImportTokenPayload, splitImportToken } from "../../src/kms/import-token.js";
import type { KmsError } from "../../src/kms/errors.js";

const KEY = "0d7f3c9e-1b2a-4c5d-8e9f-001122334455";
const claims = { keyId: KEY, wrappingKeyId: "w:1", algorithm: "RSAES_OAEP_SHA_1" as const, expiresAt: new Date(2_000_000_000_000) };
const codeOf = (fn: () => unknown) => {
  try {
    fn();
    return "ok";
  } catch (e) {
    return (e as KmsError).code;
  }
};

describe("import token codec", () => {
  it("round-trips the claims through payload ‖ MAC", () => {
    const payload = encodeImportTokenPayload(claims);
    const mac = Buffer.alloc(32, 7);
    const split = splitImportToken(Buffer.concat([payload, mac]));
    expect(split.payload.equals(payload)).toBe(true);
    expect(split.mac.equals(mac)).toBe(true);
    expect(decodeImportTokenPayload(split.payload)).toEqual(claims);
  });

  it("refuses malformed tokens with InvalidImportTokenException", () => {
    const payload = encodeImportTokenPayload(claims);
    expect(codeOf(() => splitImportToken(Buffer.alloc(10)))).toBe("InvalidImportTokenException");
    expect(codeOf(() => splitImportToken(Buffer.concat([payload, Buffer.alloc(31)])))).toBe("InvalidImportTokenException");
    const wrongVersion = Buffer.concat([payload, Buffer.alloc(32)]);
    wrongVersion[0] = 2;
    expect(codeOf(() => splitImportToken(wrongVersion))).toBe("InvalidImportTokenException");
    expect(codeOf(() => decodeImportTokenPayload(Buffer.concat([payload.subarray(0, 3), Buffer.from("{nope")])))).toBe("InvalidImportTokenException");
    const badAlg = encodeImportTokenPayload({ ...claims, algorithm: "RSAES_PKCS1_V1_5" as never });
    expect(codeOf(() => decodeImportTokenPayload(badAlg))).toBe("InvalidImportTokenException");
  });

  it("binds the key (foreign → invalid) and the expiry (at or after it → expired)", () => {
    expect(codeOf(() => checkImportClaims(claims, KEY, new Date(claims.expiresAt.getTime() - 1)))).toBe("ok");
    expect(codeOf(() => checkImportClaims(claims, KEY.replace("0d", "0e"), new Date(0)))).toBe("InvalidImportTokenException");
    expect(codeOf(() => checkImportClaims(claims, KEY, claims.expiresAt))).toBe("ExpiredImportTokenException");
  });
});
