import pkcs11js from "pkcs11js";
import type { AsymmetricKeySpec, HmacKeySpec, KeyUsage, UnwrapPath } from "../../kms/types.js";
import { type MechanismPolicy, aes256KeyTemplate, hmacKeyTemplate, keyPairTemplates, mechanismList } from "./templates.js";

/**
 * Templates of BYOK's device objects. Every one of them is sensitive and non-extractable: the point of
 * importing into an HSM is that the material is never in plaintext outside it again.
 */

/**
 * Label prefix of wrapping private keys: `p11kms-wrap:<key id>:<uuid>:<expiry ms>` (not a KMS key label;
 * labels of the first release lack the key id).
 */
export const WRAP_PREFIX = "p11kms-wrap:";
/** Label of the one HMAC key that authenticates import tokens. */
export const IMPORT_TOKEN_KEY_LABEL = "p11kms-import-token-key";

/**
 * A wrapping key pair: the private half is a token object (it must survive a restart for the 24 h the
 * parameters are valid) that may only unwrap, with OAEP where the token enforces allowed mechanisms; the
 * public half is a session object, read once for its SPKI and destroyed. For the software path (SHA-256
 * OAEP on a device without it) the private half instead may only decrypt with raw RSA: the OAEP decoding
 * happens in the process.
 */
export function wrappingKeyPairTemplates(
  bits: number,
  label: string,
  restrict: boolean,
  path: UnwrapPath,
): { publicKey: pkcs11js.Template; privateKey: pkcs11js.Template } {
  const software = path === "software";
  return {
    publicKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_MODULUS_BITS, value: bits },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_VERIFY, value: false },
      { type: pkcs11js.CKA_WRAP, value: false },
    ],
    privateKey: [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_RSA },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: !software },
      { type: pkcs11js.CKA_DECRYPT, value: software },
      { type: pkcs11js.CKA_SIGN, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      ...(restrict
        ? [{ type: pkcs11js.CKA_ALLOWED_MECHANISMS, value: mechanismList(software ? pkcs11js.CKM_RSA_X_509 : pkcs11js.CKM_RSA_PKCS_OAEP) }]
        : []),
    ],
  };
}

/**
 * Imported AES or HMAC material: the same attributes as a generated KMS key of the spec (token object,
 * sensitive, never extractable, only its usages) but without CKA_VALUE_LEN, which the unwrapped value
 * determines; its length is checked afterwards. Derived from the generated key's template so the two can
 * never drift apart on a security attribute.
 */
export function importedSecretTemplate(spec: "SYMMETRIC_DEFAULT" | HmacKeySpec, label: string, id: Buffer, restrict: boolean): pkcs11js.Template {
  const t = spec === "SYMMETRIC_DEFAULT" ? aes256KeyTemplate(label, id) : hmacKeyTemplate(spec, label, id, { restrict });
  return t.filter((a) => a.type !== pkcs11js.CKA_VALUE_LEN);
}

/**
 * Imported key pair: the private half is unwrapped with the generated pair's private template; the public
 * half is created from the generated pair's public template, its generation-only attributes replaced by
 * the values read from (RSA) or derived from (EC) the private key.
 */
export function importedPairTemplates(
  spec: AsymmetricKeySpec,
  usage: KeyUsage,
  label: string,
  id: Buffer,
  policy: MechanismPolicy,
): { privateKey: pkcs11js.Template; publicKey: (values: pkcs11js.Template) => pkcs11js.Template } {
  const t = keyPairTemplates(spec, usage, label, id, policy);
  const generationOnly = new Set<number>([pkcs11js.CKA_MODULUS_BITS, pkcs11js.CKA_PUBLIC_EXPONENT]);
  return { privateKey: t.privateKey, publicKey: (values) => [...t.publicKey.filter((a) => !generationOnly.has(a.type)), ...values] };
}

/**
 * The same objects as session objects without label or id: what a re-import unwraps only to compare its
 * check value with the present material's, destroyed in the same session call.
 */
export function asSessionObject(t: pkcs11js.Template): pkcs11js.Template {
  return t
    .filter((a) => a.type !== pkcs11js.CKA_LABEL && a.type !== pkcs11js.CKA_ID)
    .map((a) => (a.type === pkcs11js.CKA_TOKEN ? { type: a.type, value: false } : a));
}

/**
 * A session copy of an imported EC private key that may sign and derive: ECDH with the curve's generator
 * yields the public point's x coordinate, a signature picks the right y (see import-checks.ts). It never
 * becomes a token object and is destroyed in the same session call.
 */
export function ecProbeTemplate(): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_EC },
    { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_SIGN, value: true },
    { type: pkcs11js.CKA_DERIVE, value: true },
    { type: pkcs11js.CKA_DECRYPT, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
  ];
}

/** The ephemeral AES key of RSA_AES_KEY_WRAP_*: a session object that can only unwrap, destroyed after use. */
export function ephemeralKeyTemplate(): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_TOKEN, value: false },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: true },
    { type: pkcs11js.CKA_ENCRYPT, value: false },
    { type: pkcs11js.CKA_DECRYPT, value: false },
  ];
}

/** The import-token MAC key: a 256-bit generic secret token object, HMAC-SHA256 sign/verify only. */
export function importTokenKeyTemplate(): pkcs11js.Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    { type: pkcs11js.CKA_SIGN, value: true },
    { type: pkcs11js.CKA_VERIFY, value: true },
    { type: pkcs11js.CKA_ENCRYPT, value: false },
    { type: pkcs11js.CKA_DECRYPT, value: false },
    { type: pkcs11js.CKA_LABEL, value: IMPORT_TOKEN_KEY_LABEL },
  ];
}
