import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { signingInput } from "../../src/kms/asymmetric-operations.js";
import { KmsError } from "../../src/kms/errors.js";
import type { SigningAlgorithm } from "../../src/kms/types.js";

const msg = Buffer.from("message");

describe("signingInput: what reaches the device", () => {
  it.each([
    ["ECDSA_SHA_256", "sha256"],
    ["ECDSA_SHA_384", "sha384"],
    ["ECDSA_SHA_512", "sha512"],
    ["RSASSA_PSS_SHA_384", "sha384"],
    ["RSASSA_PKCS1_V1_5_SHA_512", "sha512"],
  ] as const)("RAW %s → the %s digest of the message", (alg, hash) => {
    expect(signingInput(alg, "RAW", msg).equals(createHash(hash).update(msg).digest())).toBe(true);
  });

  it.each([
    ["ECDSA_SHA_256", 32],
    ["RSASSA_PSS_SHA_384", 48],
    ["ECDSA_SHA_512", 64],
  ] as const)("DIGEST %s passes a %i-byte digest through and refuses any other length", (alg, len) => {
    const d = Buffer.alloc(len, 9);
    expect(signingInput(alg, "DIGEST", d)).toBe(d);
    for (const n of [len - 1, len + 1, 20]) {
      expect(() => signingInput(alg, "DIGEST", Buffer.alloc(n))).toThrow(KmsError);
    }
  });

  it("Ed25519 signs the message itself, RAW only", () => {
    expect(signingInput("ED25519_SHA_512", "RAW", msg)).toBe(msg);
    expect(() => signingInput("ED25519_SHA_512", "DIGEST", Buffer.alloc(64))).toThrow(/RAW/);
  });

  it("refuses EXTERNAL_MU (ML-DSA only) with ValidationException", () => {
    try {
      signingInput("ECDSA_SHA_256" as SigningAlgorithm, "EXTERNAL_MU", Buffer.alloc(64));
      expect.unreachable();
    } catch (err) {
      expect((err as KmsError).code).toBe("ValidationException");
    }
  });
});
