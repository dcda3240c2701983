import type { EncryptionContext } from "../client/types.js";
import type { EncryptedDataKey } from "./header.js";

export type { EncryptionContext };

/**
 * A data key for one message: the plaintext key and its encrypted copies. The receiver owns `dataKey` and
 * zeroes it once the message key is derived (a cache hands out copies for that reason).
 */
export interface EncryptionMaterials {
  readonly dataKey: Buffer;
  readonly encryptedDataKeys: readonly EncryptedDataKey[];
}

export interface DecryptionMaterials {
  readonly dataKey: Buffer;
  /** The KMS key that decrypted the data key. */
  readonly keyArn: string;
}

/**
 * Where data keys come from: a keyring (KMS calls), or a cache in front of one. The encryption context is
 * bound to every encrypted data key (KMS AAD) as well as to the message header.
 */
export interface MaterialsProvider {
  encryptionMaterials(req: { context: EncryptionContext; suite: number; plaintextLength?: number | undefined }): Promise<EncryptionMaterials>;
  decryptionMaterials(req: { context: EncryptionContext; suite: number; encryptedDataKeys: readonly EncryptedDataKey[] }): Promise<DecryptionMaterials>;
}
