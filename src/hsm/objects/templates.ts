import pkcs11js from "pkcs11js";
import type { AsymmetricKeySpec, HmacKeySpec, KeyUsage } from "../../kms/types.js";
import { CKK_EC_EDWARDS, CKM_EC_EDWARDS_KEY_PAIR_GEN, CKM_EDDSA, CURVES, HMAC_KEY_BYTES, MAC_MECHANISMS, rsaBits } from "./mechanisms.js";

/**
 * Attribute templates. Every key p11kms creates is a private token object that is sensitive and not
 * extractable — its value can neither be read nor wrapped out — and carries only the usages it needs.
 */
export function aes256KeyTemplate(label: string, id: Buffer): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_ENCRYPT, value: true },
    { type: pkcs11js.CKA_DECRYPT, value: true },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_SIGN, value: false },
    { type: pkcs11js.CKA_VERIFY, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: id },
  ];
}

const LABEL_RE = /^p11kms:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):v([1-9][0-9]{0,9})$/;
export const QUARANTINE_PREFIX = "p11kms-quarantine:";

/** The CKA_LABEL of one backing key: how p11kms finds its objects again after a restart. */
export function keyLabel(keyId: string, version: number): string {
  return `p11kms:${keyId}:v${version}`;
}

export function parseKeyLabel(label: string): { keyId: string; version: number } | undefined {
  const m = LABEL_RE.exec(label);
  return m ? { keyId: m[1]!, version: Number(m[2]) } : undefined;
}

/** CKA_ID: the key id's 16 bytes and the version, so other PKCS#11 tools can tell objects apart too. */
export function keyObjectId(keyId: string, version: number): Buffer {
  const out = Buffer.alloc(20);
  Buffer.from(keyId.replaceAll("-", ""), "hex").copy(out, 0);
  out.writeUInt32BE(version, 16);
  return out;
}

/** The key type and generation mechanism of each asymmetric spec. */
function pairKind(spec: AsymmetricKeySpec): { mechanism: number; keyType: number; publicAttrs: pkcs11js.Template } {
  const bits = rsaBits(spec);
  if (bits !== undefined) {
    return {
      mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN,
      keyType: pkcs11js.CKK_RSA,
      publicAttrs: [
        { type: pkcs11js.CKA_MODULUS_BITS, value: bits },
        { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
      ],
    };
  }
  const curve = CURVES[spec as keyof typeof CURVES];
  const edwards = spec === "ECC_NIST_EDWARDS25519";
  return {
    mechanism: edwards ? CKM_EC_EDWARDS_KEY_PAIR_GEN : pkcs11js.CKM_EC_KEY_PAIR_GEN,
    keyType: edwards ? CKK_EC_EDWARDS : pkcs11js.CKK_EC,
    publicAttrs: [{ type: pkcs11js.CKA_EC_PARAMS, value: curve.oid }],
  };
}

/**
 * CKA_ALLOWED_MECHANISMS value: a CK_MECHANISM_TYPE array (CK_ULONG, 8 bytes little-endian on the 64-bit
 * Linux builds p11kms runs on). pkcs11js passes a Buffer through unchanged.
 */
export function mechanismList(...mechanisms: number[]): Buffer {
  const out = Buffer.alloc(8 * mechanisms.length);
  mechanisms.forEach((m, i) => out.writeBigUInt64LE(BigInt(m), 8 * i));
  return out;
}

/** What the device lets a new key do beyond its CKA_SIGN/CKA_DECRYPT flags. */
export interface MechanismPolicy {
  /** The token honours CKA_ALLOWED_MECHANISMS (probed); without it the attribute is left out. */
  readonly restrict: boolean;
  /** RSA decryption keys also allow raw RSA (CKM_RSA_X_509), for the RSAES_OAEP_SHA_256 fallback. */
  readonly rawRsa: boolean;
}

/**
 * The mechanisms a key pair may use: exactly those p11kms calls for its spec and usage. This shuts doors
 * a PIN holder could otherwise open with the same key — PKCS#1 v1.5 decryption (Bleichenbacher's oracle),
 * raw RSA where the fallback is not in use, ECDSA with a signing key meant for something else.
 */
function allowedFor(spec: AsymmetricKeySpec, usage: KeyUsage, policy: MechanismPolicy): number[] {
  if (rsaBits(spec) === undefined) return [spec === "ECC_NIST_EDWARDS25519" ? CKM_EDDSA : pkcs11js.CKM_ECDSA];
  if (usage === "SIGN_VERIFY") return [pkcs11js.CKM_RSA_PKCS, pkcs11js.CKM_RSA_PKCS_PSS];
  return policy.rawRsa ? [pkcs11js.CKM_RSA_PKCS_OAEP, pkcs11js.CKM_RSA_X_509] : [pkcs11js.CKM_RSA_PKCS_OAEP];
}

/** Generation mechanism and the two halves' templates for C_GenerateKeyPair. */
export interface KeyPairTemplates {
  readonly mechanism: pkcs11js.Mechanism;
  readonly publicKey: pkcs11js.Template;
  readonly privateKey: pkcs11js.Template;
}

/**
 * A KMS key pair: both halves are token objects with the same label and CKA_ID. The private key is
 * private, sensitive and never extractable, and may only sign or only decrypt, as its KeyUsage says; the
 * public key (not secret) carries the matching verify/encrypt usage.
 */
export function keyPairTemplates(
  spec: AsymmetricKeySpec,
  usage: KeyUsage,
  label: string,
  id: Buffer,
  policy: MechanismPolicy,
): KeyPairTemplates {
  const kind = pairKind(spec);
  const sign = usage === "SIGN_VERIFY";
  const allowed = policy.restrict ? [{ type: pkcs11js.CKA_ALLOWED_MECHANISMS, value: mechanismList(...allowedFor(spec, usage, policy)) }] : [];
  const common = [
    { type: pkcs11js.CKA_KEY_TYPE, value: kind.keyType },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: id },
  ];
  return {
    mechanism: { mechanism: kind.mechanism },
    publicKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      ...common,
      ...kind.publicAttrs,
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_VERIFY, value: sign },
      { type: pkcs11js.CKA_ENCRYPT, value: !sign },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
    ],
    privateKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      ...common,
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: sign },
      { type: pkcs11js.CKA_DECRYPT, value: !sign },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      ...allowed,
    ],
  };
}

/**
 * A throw-away pair for GenerateDataKeyPair: session objects (gone with the session), the private key
 * extractable only so it can be handed to the client. It stays sensitive and leaves by wrapping, except
 * Ed25519, which SoftHSM2 refuses to wrap (CKR_KEY_NOT_WRAPPABLE) and which is therefore read directly.
 */
export function dataKeyPairTemplates(spec: AsymmetricKeySpec): KeyPairTemplates {
  const kind = pairKind(spec);
  const readable = spec === "ECC_NIST_EDWARDS25519";
  return {
    mechanism: { mechanism: kind.mechanism },
    publicKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: kind.keyType },
      { type: pkcs11js.CKA_TOKEN, value: false },
      ...kind.publicAttrs,
    ],
    privateKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: kind.keyType },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: !readable },
      { type: pkcs11js.CKA_EXTRACTABLE, value: true },
      { type: pkcs11js.CKA_SIGN, value: false },
      { type: pkcs11js.CKA_DECRYPT, value: false },
    ],
  };
}

/**
 * An HMAC key: a generic secret of the digest's length, token object, sensitive, never extractable, and
 * (where the token honours it) usable with its own HMAC mechanism only.
 */
export function hmacKeyTemplate(spec: HmacKeySpec, label: string, id: Buffer, policy: Pick<MechanismPolicy, "restrict">): pkcs11js.Template {
  const mech = MAC_MECHANISMS[`HMAC_SHA_${spec.slice(5)}` as keyof typeof MAC_MECHANISMS].ckm;
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_VALUE_LEN, value: HMAC_KEY_BYTES[spec] },
    ...(policy.restrict ? [{ type: pkcs11js.CKA_ALLOWED_MECHANISMS, value: mechanismList(mech) }] : []),
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_SIGN, value: true },
    { type: pkcs11js.CKA_VERIFY, value: true },
    { type: pkcs11js.CKA_ENCRYPT, value: false },
    { type: pkcs11js.CKA_DECRYPT, value: false },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_ID, value: id },
  ];
}
