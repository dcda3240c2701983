import pkcs11js from "pkcs11js";
import type { AsymmetricKeySpec, HmacKeySpec, MacAlgorithm, SigningAlgorithm } from "../../kms/types.js";

/**
 * The PKCS#11 side of each AWS algorithm and key spec: which mechanism, which curve, which sizes. The only
 * place that knows both vocabularies.
 */

/** PKCS#11 v3.0 values that pkcs11js 2.1.7 does not export. */
export const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
export const CKM_EDDSA = 0x1057;
export const CKK_EC_EDWARDS = 0x40;
export const CKM_AES_KEY_WRAP_KWP = 0x210a;
export const CKZ_DATA_SPECIFIED = 1;

/** The hashes the AWS algorithms use, by node:crypto name. */
export type HashName = "sha1" | "sha256" | "sha384" | "sha512";

interface HashInfo {
  readonly ckm: number;
  readonly mgf: number;
  readonly bytes: number;
}

/** Each hash as PKCS#11 names it: digest mechanism, MGF1 variant, output length. */
export const HASHES: Record<HashName, HashInfo> = {
  sha1: { ckm: pkcs11js.CKM_SHA_1, mgf: pkcs11js.CKG_MGF1_SHA1, bytes: 20 },
  sha256: { ckm: pkcs11js.CKM_SHA256, mgf: pkcs11js.CKG_MGF1_SHA256, bytes: 32 },
  sha384: { ckm: pkcs11js.CKM_SHA384, mgf: pkcs11js.CKG_MGF1_SHA384, bytes: 48 },
  sha512: { ckm: pkcs11js.CKM_SHA512, mgf: pkcs11js.CKG_MGF1_SHA512, bytes: 64 },
};

/** How one signing algorithm runs on the device. `input` is a digest except for Ed25519 (the message). */
export type SigningScheme =
  | { kind: "rsa-pss"; hash: HashName }
  | { kind: "rsa-pkcs1"; hash: HashName }
  | { kind: "ecdsa"; hash: HashName }
  | { kind: "eddsa" };

/** The device scheme of an AWS signing algorithm (only those signingAlgorithmsFor can return). */
export function signingScheme(alg: SigningAlgorithm): SigningScheme {
  const bits = /_SHA_(256|384|512)$/.exec(alg)?.[1];
  const hash = bits ? (`sha${bits}` as HashName) : undefined;
  if (alg.startsWith("RSASSA_PSS_") && hash) return { kind: "rsa-pss", hash };
  if (alg.startsWith("RSASSA_PKCS1_V1_5_") && hash) return { kind: "rsa-pkcs1", hash };
  if (alg.startsWith("ECDSA_") && hash) return { kind: "ecdsa", hash };
  if (alg === "ED25519_SHA_512") return { kind: "eddsa" };
  throw new Error(`no PKCS#11 scheme for ${alg}`);
}

/** PSS with salt length = digest length, as AWS signs; PKCS#1 v1.5 and ECDSA take no parameters. */
/** The PKCS#11 mechanism family of a scheme, as the metrics label it. */
export function schemeMechanismName(scheme: SigningScheme): string {
  return { "rsa-pss": "RSA_PKCS_PSS", "rsa-pkcs1": "RSA_PKCS", ecdsa: "ECDSA", eddsa: "EDDSA" }[scheme.kind];
}

export function signingMechanism(scheme: SigningScheme): pkcs11js.Mechanism {
  switch (scheme.kind) {
    case "rsa-pss": {
      const h = HASHES[scheme.hash];
      return {
        mechanism: pkcs11js.CKM_RSA_PKCS_PSS,
        parameter: { type: pkcs11js.CK_PARAMS_RSA_PSS, hashAlg: h.ckm, mgf: h.mgf, saltLen: h.bytes } as pkcs11js.IParams,
      };
    }
    case "rsa-pkcs1":
      return { mechanism: pkcs11js.CKM_RSA_PKCS };
    case "ecdsa":
      return { mechanism: pkcs11js.CKM_ECDSA };
    case "eddsa":
      return { mechanism: CKM_EDDSA };
  }
}

/** CKM_RSA_PKCS_OAEP with MGF1 over the same hash and an empty label, as AWS's RSAES_OAEP_SHA_*. */
export function oaepMechanism(hash: "sha1" | "sha256"): pkcs11js.Mechanism {
  const h = HASHES[hash];
  return {
    mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
    parameter: { type: pkcs11js.CK_PARAMS_RSA_OAEP, hashAlg: h.ckm, mgf: h.mgf, source: CKZ_DATA_SPECIFIED } as pkcs11js.IParams,
  };
}

/** Each AWS MAC algorithm's PKCS#11 mechanism and output length. */
export const MAC_MECHANISMS: Record<MacAlgorithm, { ckm: number; bytes: number }> = {
  HMAC_SHA_224: { ckm: pkcs11js.CKM_SHA224_HMAC, bytes: 28 },
  HMAC_SHA_256: { ckm: pkcs11js.CKM_SHA256_HMAC, bytes: 32 },
  HMAC_SHA_384: { ckm: pkcs11js.CKM_SHA384_HMAC, bytes: 48 },
  HMAC_SHA_512: { ckm: pkcs11js.CKM_SHA512_HMAC, bytes: 64 },
};

/** HMAC key length = digest length, as AWS generates them (SoftHSM2 also refuses shorter keys). */
export const HMAC_KEY_BYTES: Record<HmacKeySpec, number> = { HMAC_224: 28, HMAC_256: 32, HMAC_384: 48, HMAC_512: 64 };

/** Named curves: the DER OID for CKA_EC_PARAMS, the JWK curve name, and the field size in bytes. */
export interface Curve {
  readonly oid: Buffer;
  readonly jwk: string;
  readonly fieldBytes: number;
}

/** The curve of every EC key spec. */
export const CURVES: Record<Exclude<AsymmetricKeySpec, `RSA_${string}`>, Curve> = {
  ECC_NIST_P256: { oid: Buffer.from("06082a8648ce3d030107", "hex"), jwk: "P-256", fieldBytes: 32 },
  ECC_NIST_P384: { oid: Buffer.from("06052b81040022", "hex"), jwk: "P-384", fieldBytes: 48 },
  ECC_NIST_P521: { oid: Buffer.from("06052b81040023", "hex"), jwk: "P-521", fieldBytes: 66 },
  ECC_SECG_P256K1: { oid: Buffer.from("06052b8104000a", "hex"), jwk: "secp256k1", fieldBytes: 32 },
  ECC_NIST_EDWARDS25519: { oid: Buffer.from("06032b6570", "hex"), jwk: "Ed25519", fieldBytes: 32 },
};

/** The modulus size of an RSA key spec; undefined for curves. */
export function rsaBits(spec: AsymmetricKeySpec): number | undefined {
  const m = /^RSA_(\d+)$/.exec(spec);
  return m ? Number(m[1]) : undefined;
}
