import type { KeyRecord, KeyState, Tag } from "./types.js";

/** Where time comes from, so deadlines (deletion, rotation, expiry) are tested by moving a clock. */
export interface Clock {
  now(): Date;
}

/** Names one backing key (one version of one KMS key) inside a key store. */
export interface KeyMaterialRef {
  readonly keyId: string;
  readonly version: number;
}

/**
 * A device that holds key material and runs operations with it (a PKCS#11 token). Material never crosses
 * this interface: only references, inputs and results do.
 */
export interface KeyStore {
  readonly id: string;
  /** Generates a new AES-256 key inside the device under `ref`. */
  generateAesKey(ref: KeyMaterialRef): Promise<void>;
  /** AES-256-GCM encryption on the device; returns ciphertext followed by the 16-byte tag. */
  encryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer>;
  /** AES-256-GCM decryption; an authentication failure is a KmsError InvalidCiphertextException. */
  decryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, ciphertextAndTag: Buffer): Promise<Buffer>;
  /** Bytes from the device's random number generator. */
  generateRandom(length: number): Promise<Buffer>;
  /** Whether material for `ref` is present. */
  hasKey(ref: KeyMaterialRef): boolean;
  /** Every p11kms-owned key object on the device (for start-up reconciliation). */
  inventory(): Promise<KeyMaterialRef[]>;
  /** Destroys the material. Idempotent. */
  destroyKey(ref: KeyMaterialRef): Promise<void>;
  /** Takes an object out of service without destroying it (relabels it), for an operator to inspect. */
  quarantineKey(ref: KeyMaterialRef): Promise<void>;
  close(): Promise<void>;
}

export interface NewKey {
  readonly record: KeyRecord;
  readonly tags: readonly Tag[];
}

/**
 * Durable key metadata. Every method is atomic on its own; implementations are async so that a networked
 * store (PostgreSQL) can fill the same interface as the embedded SQLite one.
 */
export interface MetadataStore {
  /** Inserts the record (normally in state Creating), its first version and its tags, atomically. */
  insertKey(key: NewKey): Promise<void>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  /** Keys ordered by key id, strictly after `afterKeyId`; Creating keys included only when asked. */
  listKeys(opts: { afterKeyId?: string | undefined; limit: number; includeCreating?: boolean }): Promise<KeyRecord[]>;
  /** Compare-and-set of the state; returns false when the key was not in `from`. */
  updateKeyState(keyId: string, from: KeyState, to: KeyState): Promise<boolean>;
  /** Removes a key that never became visible (an aborted creation). */
  deleteKey(keyId: string): Promise<void>;
  getTags(keyId: string): Promise<Tag[]>;
  close(): Promise<void>;
}
