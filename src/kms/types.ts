/**
 * The key model, named exactly as AWS KMS names it: every value below is the AWS wire string, so the
 * facades pass them through unchanged and clients written for AWS recognise them.
 */

/** Every key spec AWS KMS defines; {@link SUPPORTED_KEY_SPECS} says which this build can create. */
export const KEY_SPECS = [
  "SYMMETRIC_DEFAULT",
  "RSA_2048",
  "RSA_3072",
  "RSA_4096",
  "ECC_NIST_P256",
  "ECC_NIST_P384",
  "ECC_NIST_P521",
  "ECC_SECG_P256K1",
  "ECC_NIST_EDWARDS25519",
  "HMAC_224",
  "HMAC_256",
  "HMAC_384",
  "HMAC_512",
  "SM2",
] as const;
export type KeySpec = (typeof KEY_SPECS)[number];
/** SM2 needs a device with SM2 mechanisms (SoftHSM2 has none); everything else can be created. */
export const SUPPORTED_KEY_SPECS: readonly KeySpec[] = KEY_SPECS.filter((s) => s !== "SM2");

/** Key specs of asymmetric key pairs (the private key stays in the token, the public key is shared). */
export const ASYMMETRIC_KEY_SPECS = [
  "RSA_2048",
  "RSA_3072",
  "RSA_4096",
  "ECC_NIST_P256",
  "ECC_NIST_P384",
  "ECC_NIST_P521",
  "ECC_SECG_P256K1",
  "ECC_NIST_EDWARDS25519",
] as const satisfies readonly KeySpec[];
export type AsymmetricKeySpec = (typeof ASYMMETRIC_KEY_SPECS)[number];

export const HMAC_KEY_SPECS = ["HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512"] as const satisfies readonly KeySpec[];
export type HmacKeySpec = (typeof HMAC_KEY_SPECS)[number];

export function isAsymmetricSpec(spec: KeySpec): spec is AsymmetricKeySpec {
  return (ASYMMETRIC_KEY_SPECS as readonly string[]).includes(spec);
}

export function isHmacSpec(spec: KeySpec): spec is HmacKeySpec {
  return (HMAC_KEY_SPECS as readonly string[]).includes(spec);
}

export const KEY_USAGES = ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"] as const;
export type KeyUsage = (typeof KEY_USAGES)[number];

export const KEY_STATES = [
  "Creating",
  "Enabled",
  "Disabled",
  "PendingDeletion",
  "PendingImport",
  "PendingReplicaDeletion",
  "Unavailable",
  "Updating",
] as const;
export type KeyState = (typeof KEY_STATES)[number];

export const ORIGINS = ["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"] as const;
export type Origin = (typeof ORIGINS)[number];

/** GetParametersForImport's WrappingAlgorithm values this service accepts (RSAES_PKCS1_V1_5 is refused, as AWS refuses it). */
export const WRAPPING_ALGORITHMS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"] as const;
export type WrappingAlgorithm = (typeof WRAPPING_ALGORITHMS)[number];

export const WRAPPING_KEY_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096"] as const;
export type WrappingKeySpec = (typeof WRAPPING_KEY_SPECS)[number];

/**
 * Where an import's unwrap runs: "device" (C_UnwrapKey only), or "software" (raw RSA on the device, the
 * OAEP decoding in the process, then in-token unwrap; SHA-256 wrapping on a device without it, where the
 * key store's importOaepSha256Fallback allows it). Recorded in the import's log entry.
 */
export type UnwrapPath = "device" | "software";

export const EXPIRATION_MODELS = ["KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"] as const;
export type ExpirationModel = (typeof EXPIRATION_MODELS)[number];

export const ENCRYPTION_ALGORITHMS = ["SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"] as const;
export type EncryptionAlgorithm = (typeof ENCRYPTION_ALGORITHMS)[number];

/** Every signing algorithm AWS defines (ML-DSA and SM2 are not offered by this build). */
export const SIGNING_ALGORITHMS = [
  "RSASSA_PSS_SHA_256",
  "RSASSA_PSS_SHA_384",
  "RSASSA_PSS_SHA_512",
  "RSASSA_PKCS1_V1_5_SHA_256",
  "RSASSA_PKCS1_V1_5_SHA_384",
  "RSASSA_PKCS1_V1_5_SHA_512",
  "ECDSA_SHA_256",
  "ECDSA_SHA_384",
  "ECDSA_SHA_512",
  "ED25519_SHA_512",
  "ED25519_PH_SHA_512",
  "ML_DSA_SHAKE_256",
  "SM2DSA",
] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export const MESSAGE_TYPES = ["RAW", "DIGEST", "EXTERNAL_MU"] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export const MAC_ALGORITHMS = ["HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"] as const;
export type MacAlgorithm = (typeof MAC_ALGORITHMS)[number];

/** GenerateDataKeyPair's KeyPairSpec values; SM2 is refused (no device mechanism for it). */
export const DATA_KEY_PAIR_SPECS = [...ASYMMETRIC_KEY_SPECS, "SM2"] as const;
export type DataKeyPairSpec = (typeof DATA_KEY_PAIR_SPECS)[number];

export const DATA_KEY_SPECS = ["AES_256", "AES_128"] as const;
export type DataKeySpec = (typeof DATA_KEY_SPECS)[number];

export type EncryptionContext = Readonly<Record<string, string>>;

export interface Tag {
  readonly tagKey: string;
  readonly tagValue: string;
}

/** One backing key of a KMS key; rotation adds versions, every ciphertext names the one it used. */
export interface KeyVersion {
  readonly version: number;
  readonly createdAt: Date;
}

/** The durable record of a key (the token holds the material, this holds everything else). */
export interface KeyRecord {
  readonly keyId: string;
  readonly keyStoreId: string;
  readonly description: string;
  readonly keySpec: KeySpec;
  readonly keyUsage: KeyUsage;
  readonly origin: Origin;
  readonly keyState: KeyState;
  readonly creationDate: Date;
  readonly deletionDate?: Date | undefined;
  /** The version new encryptions use. */
  readonly currentVersion: number;
  /**
   * Set once the deletion reaper has deleted the key: the record stays as a tombstone (so start-up
   * reconciliation can finish destroying token objects after a crash) but is invisible to clients.
   */
  readonly deletedAt?: Date | undefined;
  /**
   * Set only on a key read as Unavailable because its key store is disconnected: the state stored in the
   * database, which returns when the store is connected again (state changes compare against it).
   */
  readonly storedState?: KeyState | undefined;
}

/** An alias: a friendly name that points at one key and can be repointed (AWS CreateAlias/UpdateAlias). */
export interface AliasRecord {
  readonly aliasName: string;
  readonly targetKeyId: string;
  readonly creationDate: Date;
  readonly lastUpdatedDate: Date;
}

/** How a backing-key version came to be (AWS ListKeyRotations' RotationType); absent for the first. */
export type RotationType = "AUTOMATIC" | "ON_DEMAND";

/** One backing-key version as the store records it. */
export interface VersionRecord {
  readonly version: number;
  readonly createdAt: Date;
  readonly rotationType?: RotationType | undefined;
}

/** Automatic rotation of one key: present only while it is enabled. */
export interface RotationSchedule {
  readonly keyId: string;
  readonly periodDays: number;
  readonly nextRotationDate: Date;
}

/** What DescribeKey returns: the record plus what is derived from it (ARN, algorithms). */
export interface KeyMetadata {
  readonly awsAccountId: string;
  readonly keyId: string;
  readonly arn: string;
  readonly creationDate: Date;
  readonly enabled: boolean;
  readonly description: string;
  readonly keyUsage: KeyUsage;
  readonly keyState: KeyState;
  readonly deletionDate?: Date | undefined;
  readonly origin: Origin;
  readonly keyManager: "CUSTOMER";
  readonly keySpec: KeySpec;
  readonly encryptionAlgorithms: readonly EncryptionAlgorithm[];
  readonly signingAlgorithms: readonly SigningAlgorithm[];
  readonly macAlgorithms: readonly MacAlgorithm[];
  readonly customKeyStoreId?: string | undefined;
  /** EXTERNAL keys that have had material imported: whether it expires, and when. */
  readonly expirationModel?: ExpirationModel | undefined;
  readonly validTo?: Date | undefined;
  /**
   * p11kms extension, RSA ENCRYPT_DECRYPT keys only: how the key store decrypts RSAES_OAEP_SHA_256 —
   * on the device, through the raw-RSA fallback, or not at all (see docs/asymmetric-keys.md).
   */
  readonly rsaOaepSha256Decryption?: RsaOaepSha256Path | undefined;
}

/** How a key store performs RSAES_OAEP_SHA_256 decryption. */
export type RsaOaepSha256Path = "device" | "fallback" | "unsupported";
