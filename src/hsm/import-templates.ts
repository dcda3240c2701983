import pkcs11js from "pkcs11js";
import { aes256KeyTemplate, mechanismList } from "./templates.js";

/**
 * Templates of BYOK's device objects. Every one of them is sensitive and non-extractable: the point of
 * importing into an HSM is that the material is never in plaintext outside it again.
 */

/** Label prefix of wrapping private keys: `p11kms-wrap:<uuid>:<expiry ms>` (not a KMS key label). */
export const WRAP_PREFIX = "p11kms-wrap:";
/** Label of the one HMAC key that authenticates import tokens. */
export const IMPORT_TOKEN_KEY_LABEL = "p11kms-import-token-key";

/**
 * A wrapping key pair: the private half is a token object (it must survive a restart for the 24 h the
 * parameters are valid) that may only unwrap, with OAEP where the token enforces allowed mechanisms; the
 * public half is a session object, read once for its SPKI and destroyed.
 */
export function wrappingKeyPairTemplates(bits: number, label: string, restrict: boolean): { publicKey: pkcs11js.Template; privateKey: pkcs11js.Template } {
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
      { type: pkcs11js.CKA_UNWRAP, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_SIGN, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      ...(restrict ? [{ type: pkcs11js.CKA_ALLOWED_MECHANISMS, value: mechanismList(pkcs11js.CKM_RSA_PKCS_OAEP) }] : []),
    ],
  };
}

/**
 * Imported AES material: the same attributes as a generated KMS key (token object, sensitive, never
 * extractable, encrypt/decrypt only) but without CKA_VALUE_LEN, which the unwrapped value determines;
 * its length is checked afterwards.
 */
export function importedAesTemplate(label: string, id: Buffer): pkcs11js.Template {
  // Derived from the generated key's template so the two can never drift apart on a security attribute.
  return aes256KeyTemplate(label, id).filter((a) => a.type !== pkcs11js.CKA_VALUE_LEN);
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
