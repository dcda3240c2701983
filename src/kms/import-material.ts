import { KmsError, validation } from "./errors.js";
import type { KeySpec, WrappingAlgorithm, WrappingKeySpec } from "./types.js";

/**
 * AWS KMS's rules for imported key material, per key spec: which specs take it, how long secret material
 * must be, and which wrapping algorithms fit which material.
 */

/**
 * Key specs whose keys may have Origin EXTERNAL here. AWS also imports SM2 (China Regions only; not built
 * here) and this build leaves out ECC_NIST_EDWARDS25519: SoftHSM2 2.6.1 cannot unwrap an Ed25519 PKCS#8 key
 * (C_UnwrapKey answers CKR_FUNCTION_FAILED), and putting it in by value would expose it to the process.
 */
export const IMPORTABLE_KEY_SPECS: readonly KeySpec[] = [
  "SYMMETRIC_DEFAULT",
  "HMAC_224",
  "HMAC_256",
  "HMAC_384",
  "HMAC_512",
  "RSA_2048",
  "RSA_3072",
  "RSA_4096",
  "ECC_NIST_P256",
  "ECC_NIST_P384",
  "ECC_NIST_P521",
  "ECC_SECG_P256K1",
];

/**
 * Accepted lengths (bytes) of secret material: SYMMETRIC_DEFAULT exactly 256 bits; HMAC keys from the
 * digest length up to the hash's block size (AWS: HMAC_224 224–512 bits, HMAC_256 256–512, HMAC_384
 * 384–1024, HMAC_512 512–1024). Undefined for key pairs (PKCS#8 DER, checked by the device).
 */
export function secretLengths(spec: KeySpec): { min: number; max: number } | undefined {
  switch (spec) {
    case "SYMMETRIC_DEFAULT":
      return { min: 32, max: 32 };
    case "HMAC_224":
      return { min: 28, max: 64 };
    case "HMAC_256":
      return { min: 32, max: 64 };
    case "HMAC_384":
      return { min: 48, max: 128 };
    case "HMAC_512":
      return { min: 64, max: 128 };
    default:
      return undefined;
  }
}

/** The IncorrectKeyMaterialException for secret material of the wrong length, naming the rule. */
export function wrongLength(spec: KeySpec): KmsError {
  const r = secretLengths(spec);
  const rule = !r ? "" : r.min === r.max ? `exactly ${r.min * 8} bits (${r.min} bytes)` : `${r.min * 8} to ${r.max * 8} bits (${r.min} to ${r.max} bytes)`;
  return new KmsError("IncorrectKeyMaterialException", `The key material is invalid: ${spec} key material must be ${rule}.`);
}

/**
 * AWS's pairings of material and wrapping: RSA private keys only with RSA_AES_KEY_WRAP_* (too long for one
 * OAEP block), and an ECC_NIST_P521 private key not with RSAES_OAEP_* under RSA_2048 (241 bytes of PKCS#8
 * do not fit). Checked at GetParametersForImport, before the client wraps anything.
 */
export function checkWrappingFits(keySpec: KeySpec, algorithm: WrappingAlgorithm, wrappingKeySpec: WrappingKeySpec): void {
  const oaep = algorithm.startsWith("RSAES_OAEP_");
  if (oaep && keySpec.startsWith("RSA_")) {
    throw validation(`${keySpec} key material (an RSA private key) must be wrapped with RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256, not ${algorithm}.`);
  }
  if (oaep && keySpec === "ECC_NIST_P521" && wrappingKeySpec === "RSA_2048") {
    throw validation(`ECC_NIST_P521 key material does not fit ${algorithm} under an RSA_2048 wrapping key; use RSA_AES_KEY_WRAP_* or a longer wrapping key.`);
  }
}
