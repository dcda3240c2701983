import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { encodeEncryptionContext } from "../../packages/client/src/contract.js";
import { EnvelopeError } from "../../packages/client/src/envelope/errors.js";
import type { EncryptedDataKey } from "../../packages/client/src/envelope/header.js";
import type { DecryptionMaterials, EncryptionContext, EncryptionMaterials, MaterialsProvider } from "../../packages/client/src/envelope/materials.js";

/**
 * A keyring without a KMS: data keys are wrapped with AES-256-GCM under a local key, the encryption context
 * as AAD — the same contract as a KMS key (an edited wrapped key or context fails to unwrap). It exercises
 * the stream code alone, at any size, with no daemon; it counts its calls.
 */
export class LocalKeyring implements MaterialsProvider {
  readonly wrappingKey = randomBytes(32);
  encryptCalls = 0;
  decryptCalls = 0;
  /** When set, every new data key is this one (to build messages that share a data key). */
  fixedDataKey: Buffer | undefined;

  constructor(readonly keyArn = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000001") {}

  async encryptionMaterials(req: { context: EncryptionContext }): Promise<EncryptionMaterials> {
    this.encryptCalls++;
    const dataKey = this.fixedDataKey ? Buffer.from(this.fixedDataKey) : randomBytes(32);
    return { dataKey, encryptedDataKeys: [{ providerId: "p11kms", keyArn: this.keyArn, blob: this.wrap(dataKey, req.context) }] };
  }

  async decryptionMaterials(req: { context: EncryptionContext; encryptedDataKeys: readonly EncryptedDataKey[] }): Promise<DecryptionMaterials> {
    this.decryptCalls++;
    for (const edk of req.encryptedDataKeys) {
      if (edk.keyArn !== this.keyArn) continue;
      try {
        return { dataKey: this.unwrap(edk.blob, req.context), keyArn: this.keyArn };
      } catch {
        // try the next one
      }
    }
    throw new EnvelopeError("NoDecryptableDataKey", "no encrypted data key could be decrypted");
  }

  wrap(dataKey: Buffer, context: EncryptionContext): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv("aes-256-gcm", this.wrappingKey, iv);
    c.setAAD(encodeEncryptionContext(context));
    return Buffer.concat([iv, c.update(dataKey), c.final(), c.getAuthTag()]);
  }

  private unwrap(blob: Buffer, context: EncryptionContext): Buffer {
    const d = createDecipheriv("aes-256-gcm", this.wrappingKey, blob.subarray(0, 12));
    d.setAAD(encodeEncryptionContext(context));
    d.setAuthTag(blob.subarray(blob.length - 16));
    return Buffer.concat([d.update(blob.subarray(12, blob.length - 16)), d.final()]);
  }
}
