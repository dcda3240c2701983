/** Request and response shapes of {@link P11KmsClient}: the AWS KMS members, camelCase, blobs as Buffers. */

export type EncryptionContext = Readonly<Record<string, string>>;

export interface CreateKeyInput {
  readonly description?: string;
  readonly keySpec?: string;
  readonly keyUsage?: string;
  readonly tags?: readonly { tagKey: string; tagValue: string }[];
}

export interface ListKeysOutput {
  keys: { keyId: string; keyArn: string }[];
  truncated: boolean;
  nextMarker?: string;
}

export interface EncryptInput {
  readonly keyId: string;
  readonly plaintext: Uint8Array;
  readonly encryptionContext?: EncryptionContext;
  readonly grantTokens?: readonly string[];
}
export interface EncryptOutput {
  ciphertextBlob: Buffer;
  /** The key ARN. */
  keyId: string;
  encryptionAlgorithm: string;
}

export interface DecryptInput {
  readonly ciphertextBlob: Uint8Array;
  /** When given, the ciphertext must be under this key (IncorrectKeyException otherwise). */
  readonly keyId?: string;
  readonly encryptionContext?: EncryptionContext;
  readonly grantTokens?: readonly string[];
}
export interface DecryptOutput {
  plaintext: Buffer;
  keyId: string;
  encryptionAlgorithm: string;
}

export interface ReEncryptInput {
  readonly ciphertextBlob: Uint8Array;
  readonly destinationKeyId: string;
  readonly sourceKeyId?: string;
  readonly sourceEncryptionContext?: EncryptionContext;
  readonly destinationEncryptionContext?: EncryptionContext;
  readonly grantTokens?: readonly string[];
}
export interface ReEncryptOutput {
  ciphertextBlob: Buffer;
  keyId: string;
  sourceKeyId: string;
}

export interface GenerateDataKeyInput {
  readonly keyId: string;
  /** Exactly one of keySpec and numberOfBytes. */
  readonly keySpec?: "AES_256" | "AES_128";
  readonly numberOfBytes?: number;
  readonly encryptionContext?: EncryptionContext;
  readonly grantTokens?: readonly string[];
}
export interface GenerateDataKeyOutput {
  plaintext: Buffer;
  ciphertextBlob: Buffer;
  keyId: string;
}
