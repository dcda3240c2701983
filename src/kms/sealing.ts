import { encodeEncryptionContext } from "@p11kms/client/contract";
import { noteBackingKey } from "./audit-scope.js";
import { encodeHeader, IV_BYTES, invalidCiphertext, parseBlob } from "./ciphertext.js";
import { type ServiceDeps, authorizeKey, checkUsable, effective, storeOf } from "./deps.js";
import { KmsError } from "./errors.js";
import type { EncryptionContext, KeyRecord } from "./types.js";

/**
 * Seals plaintext under the key's current backing version: a fresh IV from the device RNG (store.nonce), the header and
 * the canonical encryption context as GCM additional data, the AES operation itself on the device.
 * The caller has already checked that the key is usable.
 */
export async function seal(
  deps: ServiceDeps,
  key: KeyRecord,
  plaintext: Buffer,
  context: EncryptionContext,
): Promise<Buffer> {
  const store = storeOf(deps, key);
  const ref = noteBackingKey(deps.audit, { keyId: key.keyId, version: key.currentVersion });
  const iv = await store.nonce(IV_BYTES);
  const header = encodeHeader({ keyId: key.keyId, version: ref.version, iv });
  const aad = Buffer.concat([header, encodeEncryptionContext(context)]);
  const body = await store.encryptAesGcm(ref, iv, aad, plaintext);
  return Buffer.concat([header, body]);
}

export interface Opened {
  readonly key: KeyRecord;
  readonly plaintext: Buffer;
}

/**
 * Opens a blob. The blob names its key; when the caller also names one (`expectedKeyId`) and they differ,
 * that is IncorrectKeyException, as AWS. Every other mismatch — unknown key or version, edited header,
 * wrong context, bad tag — is InvalidCiphertextException, so the error says nothing about which part failed.
 */
export async function open(
  deps: ServiceDeps,
  blob: Buffer,
  context: EncryptionContext,
  expectedKeyId: string | undefined,
  operation = "Decrypt",
  authz: { action: string; grantTokens?: readonly string[] | undefined; algorithm?: string } = { action: operation },
): Promise<Opened> {
  const parsed = parseBlob(blob);
  if (expectedKeyId !== undefined && parsed.keyId !== expectedKeyId) {
    throw new KmsError("IncorrectKeyException", "The ciphertext was not encrypted under the KMS key that was specified.");
  }
  const stored = await deps.metadata.getKey(parsed.keyId);
  if (!stored || stored.keyState === "Creating" || stored.deletedAt) throw invalidCiphertext();
  const key = effective(deps, stored);
  // The key the ciphertext names is authorized before anything is decrypted (as AWS: Decrypt on that key).
  await authorizeKey(deps, key, authz.action, {
    encryptionContext: context,
    grantTokens: authz.grantTokens,
    algorithm: authz.algorithm ? { kind: "EncryptionAlgorithm", value: authz.algorithm } : undefined,
  });
  checkUsable(deps, key, "ENCRYPT_DECRYPT", operation);
  if (key.keySpec !== "SYMMETRIC_DEFAULT" || parsed.version < 1 || parsed.version > key.currentVersion) {
    throw invalidCiphertext();
  }
  const aad = Buffer.concat([parsed.header, encodeEncryptionContext(context)]);
  const plaintext = await storeOf(deps, key).decryptAesGcm(
    noteBackingKey(deps.audit, { keyId: key.keyId, version: parsed.version }),
    parsed.iv,
    aad,
    parsed.body,
  );
  return { key, plaintext };
}
