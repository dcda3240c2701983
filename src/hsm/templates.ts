import pkcs11js from "pkcs11js";

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
