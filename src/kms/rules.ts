import { KmsError } from "./errors.js";
import type { EncryptionAlgorithm, KeyRecord, KeySpec, KeyUsage, MacAlgorithm, SigningAlgorithm } from "./types.js";

/**
 * The one place that decides whether a key may be used for an operation. Every cryptographic operation
 * calls {@link assertUsable}; the state errors are the ones AWS KMS returns.
 */
export function assertUsable(key: KeyRecord, usage?: KeyUsage): void {
  assertEnabled(key);
  if (usage !== undefined && key.keyUsage !== usage) {
    throw new KmsError(
      "InvalidKeyUsageException",
      `Key ${key.keyId} has KeyUsage ${key.keyUsage}; this operation needs ${usage}.`,
    );
  }
}

/** The state half of {@link assertUsable}, for operations open to every usage (GetPublicKey). */
export function assertEnabled(key: KeyRecord): void {
  switch (key.keyState) {
    case "Enabled":
      break;
    case "Disabled":
      throw new KmsError("DisabledException", `Key ${key.keyId} is disabled.`);
    default:
      throw new KmsError("KMSInvalidStateException", `Key ${key.keyId} is in state ${key.keyState}.`);
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

/** The signing algorithms each key spec supports, as AWS pairs them (each NIST curve with its own hash). */
export function signingAlgorithmsFor(spec: KeySpec, usage: KeyUsage): SigningAlgorithm[] {
  if (usage !== "SIGN_VERIFY") return [];
  switch (spec) {
    case "RSA_2048":
    case "RSA_3072":
    case "RSA_4096":
      return [
        "RSASSA_PKCS1_V1_5_SHA_256",
        "RSASSA_PKCS1_V1_5_SHA_384",
        "RSASSA_PKCS1_V1_5_SHA_512",
        "RSASSA_PSS_SHA_256",
        "RSASSA_PSS_SHA_384",
        "RSASSA_PSS_SHA_512",
      ];
    case "ECC_NIST_P256":
    case "ECC_SECG_P256K1":
      return ["ECDSA_SHA_256"];
    case "ECC_NIST_P384":
      return ["ECDSA_SHA_384"];
    case "ECC_NIST_P521":
      return ["ECDSA_SHA_512"];
    case "ECC_NIST_EDWARDS25519":
      // AWS also lists ED25519_PH_SHA_512 (pre-hashed Ed25519ph); SoftHSM2's CKM_EDDSA is pure Ed25519 only.
      return ["ED25519_SHA_512"];
    default:
      return [];
  }
}

/** A signing algorithm the key does not support is InvalidKeyUsageException, as AWS answers. */
export function assertSigningAlgorithm(key: KeyRecord, algorithm: SigningAlgorithm): void {
  const supported = signingAlgorithmsFor(key.keySpec, key.keyUsage);
  if (!supported.includes(algorithm)) {
    throw new KmsError(
      "InvalidKeyUsageException",
      `SigningAlgorithm ${algorithm} is not supported by key ${key.keyId} (supported: ${supported.join(", ") || "none"}).`,
    );
  }
}

/** The one MAC algorithm of each HMAC key spec. */
export function macAlgorithmsFor(spec: KeySpec, usage: KeyUsage): MacAlgorithm[] {
  if (usage !== "GENERATE_VERIFY_MAC" || !spec.startsWith("HMAC_")) return [];
  return [`HMAC_SHA_${spec.slice(5)}` as MacAlgorithm];
}

export function assertMacAlgorithm(key: KeyRecord, algorithm: MacAlgorithm): void {
  const supported = macAlgorithmsFor(key.keySpec, key.keyUsage);
  if (!supported.includes(algorithm)) {
    throw new KmsError(
      "InvalidKeyUsageException",
      `MacAlgorithm ${algorithm} is not supported by key ${key.keyId} (supported: ${supported.join(", ") || "none"}).`,
    );
  }
}
