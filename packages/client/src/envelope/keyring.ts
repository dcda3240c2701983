import type { DecryptInput, DecryptOutput, EncryptInput, EncryptOutput, GenerateDataKeyInput, GenerateDataKeyOutput } from "../client/types.js";
import { KmsClientError } from "../client/errors.js";
import { EnvelopeError } from "./errors.js";
import type { EncryptedDataKey } from "./header.js";
import type { DecryptionMaterials, EncryptionContext, EncryptionMaterials, MaterialsProvider } from "./materials.js";
import { DATA_KEY_BYTES } from "./suite.js";

/** The KMS calls a keyring makes ({@link P11KmsClient} has them; tests may wrap one to count calls). */
export interface KeyringKms {
  generateDataKey(req: GenerateDataKeyInput): Promise<GenerateDataKeyOutput>;
  encrypt(req: EncryptInput): Promise<EncryptOutput>;
  decrypt(req: DecryptInput): Promise<DecryptOutput>;
}

export const P11KMS_PROVIDER_ID = "p11kms";

export interface KmsKeyringOptions {
  readonly kms: KeyringKms;
  /** Key ids or ARNs. The first generates the data key, every other one encrypts a copy of it. */
  readonly keyIds: readonly string[];
  /**
   * Decrypt with any key an encrypted data key names, not only `keyIds` (useful for readers that must
   * open whatever they are given; the KMS still decides who may use which key).
   */
  readonly discovery?: boolean;
  readonly grantTokens?: readonly string[];
}

/**
 * A keyring over p11kms KMS keys. Encryption: GenerateDataKey under the first key, Encrypt of the same data
 * key under each other key, so any one of them can open the message. Decryption: the encrypted data keys
 * whose key this keyring lists are tried in order with Decrypt (naming the key explicitly) until one works.
 */
export class KmsKeyring implements MaterialsProvider {
  constructor(private readonly o: KmsKeyringOptions) {
    if (o.keyIds.length === 0 && !o.discovery) throw new EnvelopeError("InvalidInput", "a keyring needs at least one key id (or discovery for decryption)");
  }

  /** The key ids this keyring encrypts under (part of a data-key cache's key). */
  get keyIds(): readonly string[] {
    return this.o.keyIds;
  }

  async encryptionMaterials(req: { context: EncryptionContext }): Promise<EncryptionMaterials> {
    const [generator, ...others] = this.o.keyIds;
    if (!generator) throw new EnvelopeError("InvalidInput", "a discovery keyring without key ids cannot encrypt");
    const grantTokens = this.o.grantTokens;
    const dk = await this.o.kms.generateDataKey({ keyId: generator, keySpec: "AES_256", encryptionContext: req.context, grantTokens });
    try {
      if (dk.plaintext.length !== DATA_KEY_BYTES) throw new EnvelopeError("InvalidInput", "the KMS returned a data key of the wrong length");
      const edks: EncryptedDataKey[] = [{ providerId: P11KMS_PROVIDER_ID, keyArn: dk.keyId, blob: dk.ciphertextBlob }];
      for (const keyId of others) {
        const e = await this.o.kms.encrypt({ keyId, plaintext: dk.plaintext, encryptionContext: req.context, grantTokens });
        edks.push({ providerId: P11KMS_PROVIDER_ID, keyArn: e.keyId, blob: e.ciphertextBlob });
      }
      return { dataKey: dk.plaintext, encryptedDataKeys: edks };
    } catch (err) {
      dk.plaintext.fill(0);
      throw err;
    }
  }

  async decryptionMaterials(req: { context: EncryptionContext; encryptedDataKeys: readonly EncryptedDataKey[] }): Promise<DecryptionMaterials> {
    const failures: string[] = [];
    for (const edk of req.encryptedDataKeys) {
      if (edk.providerId !== P11KMS_PROVIDER_ID || !this.accepts(edk.keyArn)) continue;
      try {
        const res = await this.o.kms.decrypt({ ciphertextBlob: edk.blob, keyId: edk.keyArn, encryptionContext: req.context, grantTokens: this.o.grantTokens });
        // The KMS must have used the key the header names (it was asked to); anything else is refused.
        if (res.keyId !== edk.keyArn || res.plaintext.length !== DATA_KEY_BYTES) {
          res.plaintext.fill(0);
          failures.push(`${edk.keyArn}: unexpected key or data key length`);
          continue;
        }
        return { dataKey: res.plaintext, keyArn: res.keyId };
      } catch (err) {
        // Not this key (no access, wrong context, disabled...): try the next one; report them all at the end.
        if (!(err instanceof KmsClientError)) throw err;
        failures.push(`${edk.keyArn}: ${err.type}`);
      }
    }
    const detail = failures.length > 0 ? failures.join("; ") : "none of them is under a key of this keyring";
    throw new EnvelopeError("NoDecryptableDataKey", `no encrypted data key could be decrypted (${detail})`);
  }

  private accepts(keyArn: string): boolean {
    return this.o.discovery === true || this.o.keyIds.some((id) => id === keyArn || keyArn.endsWith(`:key/${id}`));
  }
}
