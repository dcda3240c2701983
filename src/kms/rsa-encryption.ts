import { noteBackingKey } from "./audit-scope.js";
import { type ServiceDeps, authorizeKey, checkUsable, storeOf } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import { assertAlgorithm } from "./rules.js";
import { open, seal } from "./sealing.js";
import type { EncryptionAlgorithm, EncryptionContext, KeyRecord } from "./types.js";

/**
 * Encryption with RSA keys (RSAES-OAEP), beside the symmetric envelope of sealing.ts. An RSA ciphertext is
 * the bare OAEP ciphertext, as AWS returns it, so anyone holding the public key can produce one; it names
 * no key, which is why Decrypt needs KeyId and EncryptionAlgorithm for it.
 */

/** The largest plaintext per key spec and algorithm: k − 2·hLen − 2 bytes (RFC 8017 §7.1.1), as AWS. */
export const RSA_MAX_PLAINTEXT: Record<string, Partial<Record<EncryptionAlgorithm, number>>> = {
  RSA_2048: { RSAES_OAEP_SHA_1: 214, RSAES_OAEP_SHA_256: 190 },
  RSA_3072: { RSAES_OAEP_SHA_1: 342, RSAES_OAEP_SHA_256: 318 },
  RSA_4096: { RSAES_OAEP_SHA_1: 470, RSAES_OAEP_SHA_256: 446 },
};

/** RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256: the algorithms that select RSA instead of the envelope. */
export function isRsaAlgorithm(alg: EncryptionAlgorithm | undefined): boolean {
  return alg === "RSAES_OAEP_SHA_1" || alg === "RSAES_OAEP_SHA_256";
}

/** Encrypts under `key` with an algorithm already checked against it: the envelope or bare RSA-OAEP. */
export async function encryptWith(
  deps: ServiceDeps,
  key: KeyRecord,
  algorithm: EncryptionAlgorithm,
  plaintext: Buffer,
  context: EncryptionContext,
): Promise<Buffer> {
  if (!isRsaAlgorithm(algorithm)) return seal(deps, key, plaintext, context);
  noContext(context);
  const max = RSA_MAX_PLAINTEXT[key.keySpec]?.[algorithm] ?? 0;
  if (plaintext.length > max) {
    throw validation(`Plaintext must be at most ${max} bytes for ${key.keySpec} with ${algorithm}; got ${plaintext.length}.`);
  }
  return storeOf(deps, key).encryptRsa(noteBackingKey(deps.audit, { keyId: key.keyId, version: key.currentVersion }), algorithm, plaintext);
}

/** What a decryption found: the key that opened it, the plaintext (caller wipes it), the algorithm. */
export interface Decrypted {
  readonly key: KeyRecord;
  readonly plaintext: Buffer;
  readonly algorithm: EncryptionAlgorithm;
}

/**
 * Decrypts a blob. RSA needs the key named (`keyId`) and the algorithm; without an algorithm the blob is a
 * symmetric envelope, and naming an RSA key then is InvalidKeyUsageException (SYMMETRIC_DEFAULT does not
 * fit it), as AWS answers.
 */
export async function decryptWith(
  deps: ServiceDeps,
  blob: Buffer,
  context: EncryptionContext,
  named: KeyRecord | undefined,
  requested: EncryptionAlgorithm | undefined,
  keyField = "KeyId",
  grantTokens?: readonly string[] | undefined,
): Promise<Decrypted> {
  const operation = keyField === "SourceKeyId" ? "ReEncrypt" : "Decrypt";
  const action = keyField === "SourceKeyId" ? "ReEncryptFrom" : "Decrypt";
  if (!isRsaAlgorithm(requested)) {
    if (named && named.keySpec !== "SYMMETRIC_DEFAULT") {
      checkUsable(deps, named, "ENCRYPT_DECRYPT", operation);
      assertAlgorithm(named, requested ?? "SYMMETRIC_DEFAULT");
    }
    const { key, plaintext } = await open(deps, blob, context, named?.keyId, operation, { action, grantTokens, algorithm: "SYMMETRIC_DEFAULT" });
    return { key, plaintext, algorithm: "SYMMETRIC_DEFAULT" };
  }
  if (!named) throw validation(`${keyField} is required to decrypt with ${requested}.`);
  await authorizeKey(deps, named, action, { grantTokens, algorithm: { kind: "EncryptionAlgorithm", value: requested ?? "SYMMETRIC_DEFAULT" } });
  checkUsable(deps, named, "ENCRYPT_DECRYPT", operation);
  const algorithm = assertAlgorithm(named, requested);
  noContext(context);
  const plaintext = await storeOf(deps, named).decryptRsa(noteBackingKey(deps.audit, { keyId: named.keyId, version: named.currentVersion }), algorithm, blob);
  return { key: named, plaintext, algorithm };
}

/** AWS binds an encryption context only with symmetric keys; RSA-OAEP has nowhere to put one. */
function noContext(context: EncryptionContext): void {
  if (Object.keys(context).length > 0) {
    throw new KmsError("ValidationException", "EncryptionContext is not supported with asymmetric KMS keys.");
  }
}
