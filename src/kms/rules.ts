import { KmsError } from "./errors.js";
import type { EncryptionAlgorithm, KeyRecord, KeySpec, KeyUsage } from "./types.js";

/**
 * The one place that decides whether a key may be used for an operation. Every cryptographic operation
 * calls {@link assertUsable}; the state errors are the ones AWS KMS returns.
 */
export function assertUsable(key: KeyRecord, usage: KeyUsage): void {
  switch (key.keyState) {
    case "Enabled":
      break;
    case "Disabled":
      throw new KmsError("DisabledException", `Key ${key.keyId} is disabled.`);
    default:
      throw new KmsError("KMSInvalidStateException", `Key ${key.keyId} is in state ${key.keyState}.`);
  }
  if (key.keyUsage !== usage) {
    throw new KmsError(
      "InvalidKeyUsageException",
      `Key ${key.keyId} has KeyUsage ${key.keyUsage}; this operation needs ${usage}.`,
    );
  }
}

/** The encryption algorithms each key spec supports (what DescribeKey reports). */
export function encryptionAlgorithmsFor(spec: KeySpec, usage: KeyUsage): EncryptionAlgorithm[] {
  if (usage !== "ENCRYPT_DECRYPT") return [];
  if (spec === "SYMMETRIC_DEFAULT") return ["SYMMETRIC_DEFAULT"];
  if (spec.startsWith("RSA_")) return ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"];
  if (spec === "SM2") return ["SM2PKE"];
  return [];
}

/** A requested algorithm must be one the key supports; AWS answers InvalidKeyUsageException otherwise. */
export function assertAlgorithm(key: KeyRecord, algorithm: EncryptionAlgorithm | undefined): EncryptionAlgorithm {
  const supported = encryptionAlgorithmsFor(key.keySpec, key.keyUsage);
  const alg = algorithm ?? "SYMMETRIC_DEFAULT";
  if (!supported.includes(alg)) {
    throw new KmsError(
      "InvalidKeyUsageException",
      `EncryptionAlgorithm ${alg} is not supported by key ${key.keyId} (supported: ${supported.join(", ") || "none"}).`,
    );
  }
  return alg;
}

/** The key usages AWS allows for each key spec; the first is the default. */
export function allowedUsages(spec: KeySpec): KeyUsage[] {
  if (spec === "SYMMETRIC_DEFAULT") return ["ENCRYPT_DECRYPT"];
  if (spec.startsWith("RSA_")) return ["ENCRYPT_DECRYPT", "SIGN_VERIFY"];
  if (spec.startsWith("HMAC_")) return ["GENERATE_VERIFY_MAC"];
  if (spec === "SM2") return ["SIGN_VERIFY", "ENCRYPT_DECRYPT", "KEY_AGREEMENT"];
  if (spec === "ECC_NIST_EDWARDS25519" || spec === "ECC_SECG_P256K1") return ["SIGN_VERIFY"];
  return ["SIGN_VERIFY", "KEY_AGREEMENT"];
}
