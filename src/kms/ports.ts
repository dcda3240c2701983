import type {
  AliasRecord,
  AsymmetricKeySpec,
  ExpirationModel,
  EncryptionAlgorithm,
  HmacKeySpec,
  KeyRecord,
  KeySpec,
  KeyState,
  KeyUsage,
  MacAlgorithm,
  RotationSchedule,
  RotationType,
  RsaOaepSha256Path,
  SigningAlgorithm,
  Tag,
  UnwrapPath,
  VersionRecord,
  WrappingAlgorithm,
  WrappingKeySpec,
} from "./types.js";
import type { GrantRecord } from "./authz/grants.js";

/** Where time comes from, so deadlines (deletion, rotation, expiry) are tested by moving a clock. */
export interface Clock {
  now(): Date;
}

/** Names one backing key (one version of one KMS key) inside a key store. */
export interface KeyMaterialRef {
  readonly keyId: string;
  readonly version: number;
}

/** What a key store's device can do, probed once when it is opened. */
export interface KeyStoreCapabilities {
  /** The key specs the device can generate and use. */
  readonly keySpecs: readonly KeySpec[];
  /** How RSAES_OAEP_SHA_256 decryption is done (configuration and device decide together). */
  readonly rsaOaepSha256: RsaOaepSha256Path;
}

/**
 * Asymmetric key pairs: the private key never leaves the device; the public key does (as DER
 * SubjectPublicKeyInfo). Signatures are returned in the AWS encodings (DER for ECDSA).
 */
export interface AsymmetricKeyOperations {
  /** Generates a key pair inside the device, its private half limited to `usage`. */
  generateKeyPair(ref: KeyMaterialRef, spec: AsymmetricKeySpec, usage: KeyUsage): Promise<void>;
  /** The public key as DER SubjectPublicKeyInfo. */
  getPublicKey(ref: KeyMaterialRef): Promise<Buffer>;
  /**
   * Signs `input`: the message digest for every hash-then-sign algorithm (the caller hashes RAW messages),
   * the message itself for ED25519_SHA_512 (pure Ed25519 hashes internally).
   */
  sign(ref: KeyMaterialRef, algorithm: SigningAlgorithm, input: Buffer): Promise<Buffer>;
  /** Verifies on the device; false when the signature does not verify (malformed signatures included). */
  verify(ref: KeyMaterialRef, algorithm: SigningAlgorithm, input: Buffer, signature: Buffer): Promise<boolean>;
  /** RSAES-OAEP encryption with the public key. */
  encryptRsa(ref: KeyMaterialRef, algorithm: EncryptionAlgorithm, plaintext: Buffer): Promise<Buffer>;
  /** RSAES-OAEP decryption; a ciphertext that does not decode is InvalidCiphertextException. */
  decryptRsa(ref: KeyMaterialRef, algorithm: EncryptionAlgorithm, ciphertext: Buffer): Promise<Buffer>;
  /**
   * A fresh key pair for a client (GenerateDataKeyPair): made by the device as session objects and
   * returned as DER SPKI + PKCS#8. The caller seals the private key and wipes it.
   */
  generateDataKeyPair(spec: AsymmetricKeySpec): Promise<{ publicKey: Buffer; privateKey: Buffer }>;
}

/** HMAC keys (GENERATE_VERIFY_MAC). */
export interface MacKeyOperations {
  generateHmacKey(ref: KeyMaterialRef, spec: HmacKeySpec): Promise<void>;
  generateMac(ref: KeyMaterialRef, algorithm: MacAlgorithm, message: Buffer): Promise<Buffer>;
  /** Verifies on the device; false when the MAC does not match (any length). */
  verifyMac(ref: KeyMaterialRef, algorithm: MacAlgorithm, message: Buffer, mac: Buffer): Promise<boolean>;
}

/**
 * BYOK: wrapping key pairs, the import token's MAC key and the unwrap all live in the device, so imported
 * material is never in plaintext outside it.
 */
export interface KeyImportOperations {
  /**
   * Generates an RSA pair for one import parameter set of `keyId`, whose private half may only unwrap
   * (or, for the software path, only raw-RSA decrypt); returns its id and DER SPKI.
   */
  createWrappingKey(keyId: string, spec: WrappingKeySpec, algorithm: WrappingAlgorithm, expiresAt: Date): Promise<{ wrappingKeyId: string; publicKey: Buffer }>;
  /** Where an import with this algorithm unwraps, or undefined when this key store cannot (configuration). */
  unwrapPath(algorithm: WrappingAlgorithm): UnwrapPath | undefined;
  /** MAC of an import token's payload, with a key held in the device. */
  signImportToken(payload: Buffer): Promise<Buffer>;
  /** Verifies an import token's MAC on the device; false for any mismatch. */
  verifyImportToken(payload: Buffer, mac: Buffer): Promise<boolean>;
  /**
   * Unwraps material of `material.keySpec` into token objects under `ref` (sensitive, non-extractable;
   * for key pairs also the public key), or with `compareOnly` into session objects that are destroyed at
   * once. Returns a check value computed by the device (never the material) that recognises the same
   * material again. Throws InvalidCiphertextException when it does not unwrap and
   * IncorrectKeyMaterialException when it is not valid material of the spec; either way nothing is left.
   */
  unwrapKeyMaterial(req: UnwrapRequest): Promise<{ checkValue: Buffer; unwrapPath: UnwrapPath }>;
  /** Destroys wrapping key pairs whose parameters expired at or before `now`. */
  destroyExpiredWrappingKeys(now: Date): Promise<void>;
  /** Destroys all but the newest `keep` unexpired wrapping key pairs of `keyId`. */
  destroyOldWrappingKeys(keyId: string, keep: number): Promise<void>;
  /** How many wrapping key pairs (unexpired import parameter sets) the device holds. */
  outstandingWrappingKeys(): number;
}

/** One ImportKeyMaterial unwrap (see {@link KeyImportOperations.unwrapKeyMaterial}). */
export interface UnwrapRequest {
  readonly ref: KeyMaterialRef;
  readonly keySpec: KeySpec;
  readonly keyUsage: KeyUsage;
  readonly wrappingKeyId: string;
  readonly algorithm: WrappingAlgorithm;
  readonly encrypted: Buffer;
  readonly compareOnly: boolean;
}

/**
 * A device that holds key material and runs operations with it (a PKCS#11 token). Material never crosses
 * this interface: only references, inputs and results do (GenerateDataKeyPair's fresh pair excepted: it
 * is made for the client).
 */
export interface KeyStore extends AsymmetricKeyOperations, MacKeyOperations, KeyImportOperations {
  readonly id: string;
  readonly capabilities: KeyStoreCapabilities;
  /** Generates a new AES-256 key inside the device under `ref`. */
  generateAesKey(ref: KeyMaterialRef): Promise<void>;
  /** AES-256-GCM encryption on the device; returns ciphertext followed by the 16-byte tag. */
  encryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, plaintext: Buffer): Promise<Buffer>;
  /** AES-256-GCM decryption; an authentication failure is a KmsError InvalidCiphertextException. */
  decryptAesGcm(ref: KeyMaterialRef, iv: Buffer, aad: Buffer, ciphertextAndTag: Buffer): Promise<Buffer>;
  /** Bytes from the device's random number generator. */
  generateRandom(length: number): Promise<Buffer>;
  /**
   * A fresh nonce (an AES-GCM IV): public, never handed out twice. From the device's random number
   * generator too, but drawn in blocks, because one device call per IV cost more than the encryption.
   */
  nonce(length: number): Promise<Buffer>;
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
  /** The key policy document, stored with the key in the same transaction. */
  readonly policy?: string | undefined;
}

/**
 * Durable key metadata. Every method is atomic on its own; implementations are async so that a networked
 * store (PostgreSQL) can fill the same interface as the embedded SQLite one.
 */
export interface MetadataStore extends LifecycleMetadata, AliasMetadata, RotationMetadata, KeyStoreMetadata, ImportMetadata, AccessMetadata {
  /** Inserts the record (normally in state Creating), its first version and its tags, atomically. */
  insertKey(key: NewKey): Promise<void>;
  getKey(keyId: string): Promise<KeyRecord | undefined>;
  /**
   * Keys ordered by key id, strictly after `afterKeyId`; Creating keys and tombstones of deleted keys
   * included only when asked (start-up reconciliation asks).
   */
  listKeys(opts: { afterKeyId?: string | undefined; limit: number; includeCreating?: boolean; includeDeleted?: boolean }): Promise<KeyRecord[]>;
  /** Compare-and-set of the state; returns false when the key was not in `from`. */
  updateKeyState(keyId: string, from: KeyState, to: KeyState): Promise<boolean>;
  /** Removes a key that never became visible (an aborted creation). */
  deleteKey(keyId: string): Promise<void>;
  getTags(keyId: string): Promise<Tag[]>;
  close(): Promise<void>;
}

/** What is remembered about a key's imported material (it outlives the material: re-import compares with it). */
export interface ImportRecord {
  readonly keyId: string;
  /** Device-computed check value of the first material imported; later imports must match it. */
  readonly keyCheckValue: Buffer;
  readonly expirationModel: ExpirationModel;
  /** When the current material expires (KEY_MATERIAL_EXPIRES only, while material is present). */
  readonly validTo?: Date | undefined;
}

/** BYOK material bookkeeping; each method is one transaction. */
export interface ImportMetadata {
  getImport(keyId: string): Promise<ImportRecord | undefined>;
  /** Records the import and turns the key PendingImport → Enabled; false (nothing written) if it was not PendingImport. */
  completeImport(record: ImportRecord): Promise<boolean>;
  /**
   * Re-import of the same material over present material: only the expiry changes, and only while the key
   * is still in `state` (Enabled or Disabled); false (nothing written) otherwise.
   */
  updateImportExpiry(record: Omit<ImportRecord, "keyCheckValue">, state: KeyState): Promise<boolean>;
  /** The material is gone: `from` → PendingImport and the expiry cleared (the check value stays); false if not in `from`. */
  removeMaterial(keyId: string, from: KeyState): Promise<boolean>;
  /** Keys whose imported material expires at or before `now` (Enabled or Disabled, not deleted), soonest first. */
  dueMaterialExpirations(now: Date, limit: number): Promise<KeyRecord[]>;
}

/** State changes, deletion, descriptions and tags of keys. */
export interface LifecycleMetadata {
  /**
   * Compare-and-set of the state that also sets (or, with undefined, clears) the deletion date; false
   * when the key was not in `from` (a concurrent change won).
   */
  transitionKey(keyId: string, from: KeyState, to: KeyState, deletionDate: Date | undefined): Promise<boolean>;
  /**
   * Turns a key pending deletion whose deletion date is at or before `at` into a tombstone, and removes its
   * aliases and rotation schedule, atomically. False when it is no longer due (cancelled meanwhile).
   */
  markDeleted(keyId: string, at: Date): Promise<boolean>;
  /** Keys pending deletion whose deletion date is at or before `now`, oldest deadline first. */
  dueDeletions(now: Date, limit: number): Promise<KeyRecord[]>;
  updateDescription(keyId: string, description: string): Promise<void>;
  /** Adds or overwrites tags; false (and nothing written) when the key would end up with more than `max`. */
  putTags(keyId: string, tags: readonly Tag[], max: number): Promise<boolean>;
  removeTags(keyId: string, tagKeys: readonly string[]): Promise<void>;
  /** Tags ordered by key, strictly after `afterTagKey` (ListResourceTags pages). */
  listTags(keyId: string, opts: { afterTagKey?: string | undefined; limit: number }): Promise<Tag[]>;
}

/** Aliases: unique names, each pointing at one key. */
export interface AliasMetadata {
  /** Inserts the alias unless the name exists or the key already has `maxPerKey` aliases. */
  insertAlias(alias: AliasRecord, maxPerKey: number): Promise<"ok" | "exists" | "limit">;
  getAlias(aliasName: string): Promise<AliasRecord | undefined>;
  /** Repoints an existing alias; false when it does not exist (or the new key is at `maxPerKey`). */
  retargetAlias(aliasName: string, targetKeyId: string, at: Date, maxPerKey: number): Promise<"ok" | "missing" | "limit">;
  deleteAlias(aliasName: string): Promise<boolean>;
  /** Aliases ordered by name, strictly after `afterName`, optionally only those of one key. */
  listAliases(opts: { keyId?: string | undefined; afterName?: string | undefined; limit: number }): Promise<AliasRecord[]>;
}

/** Key versions and automatic rotation schedules. */
export interface RotationMetadata {
  getRotation(keyId: string): Promise<RotationSchedule | undefined>;
  /** Enables (or changes) automatic rotation, or disables it with undefined. */
  setRotation(keyId: string, schedule: RotationSchedule | undefined): Promise<void>;
  /**
   * Records a new version and makes it current, atomically, only if the key's current version is still
   * `fromVersion` (compare-and-set: two rotations of one key cannot both win). `nextRotationDate`, when
   * given, advances the schedule in the same transaction so a scheduled rotation happens exactly once.
   */
  addVersion(keyId: string, fromVersion: number, version: VersionRecord, nextRotationDate?: Date): Promise<boolean>;
  listVersions(keyId: string, opts: { afterVersion: number; limit: number }): Promise<VersionRecord[]>;
  countVersions(keyId: string, type: RotationType): Promise<number>;
  /** Schedules due at or before `now` of keys that are Enabled and not deleted, in these key stores. */
  dueRotations(now: Date, keyStoreIds: readonly string[]): Promise<RotationSchedule[]>;
}

/** What is remembered about each configured key store: when it was first seen, whether it should connect. */
export interface KeyStoreRecord {
  readonly keyStoreId: string;
  readonly creationDate: Date;
  /** False after DisconnectCustomKeyStore: the store stays disconnected across restarts until connected. */
  readonly connect: boolean;
}

export interface KeyStoreMetadata {
  getKeyStores(): Promise<KeyStoreRecord[]>;
  putKeyStore(record: KeyStoreRecord): Promise<void>;
}

/** Key policies and grants (docs/authorization.md); each method is one transaction. */
export interface AccessMetadata {
  /** The key's policy document; undefined for keys created before policies existed (the default applies). */
  getKeyPolicy(keyId: string): Promise<string | undefined>;
  putKeyPolicy(keyId: string, policy: string): Promise<void>;
  /** Inserts the grant unless the key has `maxPerKey` grants, or its grantee `maxPerGrantee` grants on the key. */
  insertGrant(grant: GrantRecord, maxPerKey: number, maxPerGrantee: number): Promise<"ok" | "limit">;
  getGrant(grantId: string): Promise<GrantRecord | undefined>;
  deleteGrant(grantId: string): Promise<boolean>;
  /** The grants of one grantee on one key (authorization's lookup). */
  grantsFor(keyId: string, granteePrincipal: string): Promise<GrantRecord[]>;
  /** A key's grants ordered by grant id, strictly after `afterGrantId`, optionally filtered. */
  listGrants(opts: { keyId: string; grantId?: string | undefined; granteePrincipal?: string | undefined; afterGrantId?: string | undefined; limit: number }): Promise<GrantRecord[]>;
  /** Grants (of keys not deleted) that `retiringPrincipal` may retire, ordered by grant id. */
  listRetirableGrants(opts: { retiringPrincipal: string; afterGrantId?: string | undefined; limit: number }): Promise<GrantRecord[]>;
}
