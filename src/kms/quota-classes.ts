/**
 * Which request quota an operation counts against, shaped like AWS KMS's: cryptographic operations share
 * one quota per key type (symmetric, RSA, ECC), every other (management) operation has a quota of its own.
 * GenerateRandom counts as symmetric, as AWS counts it.
 */
export type QuotaClass = "symmetric" | "rsa" | "ecc" | `operation:${string}`;

/** Cryptographic operations that only ever use symmetric keys (or no key at all). */
const SYMMETRIC_ONLY: ReadonlySet<string> = new Set([
  "GenerateDataKey",
  "GenerateDataKeyWithoutPlaintext",
  "GenerateDataKeyPair",
  "GenerateDataKeyPairWithoutPlaintext",
  "GenerateMac",
  "VerifyMac",
  "GenerateRandom",
]);

/** Cryptographic operations whose quota depends on the type of the key they use. */
const KEY_TYPE_DEPENDENT: ReadonlySet<string> = new Set(["Encrypt", "Decrypt", "ReEncrypt", "Sign", "Verify", "DeriveSharedSecret"]);

/** True for every operation that counts against a shared cryptographic quota (never a per-operation one). */
export function isCryptographicOperation(operation: string): boolean {
  return SYMMETRIC_ONLY.has(operation) || KEY_TYPE_DEPENDENT.has(operation);
}

/** True when {@link quotaClass} needs the key spec of the request's key to decide. */
export function needsKeySpec(operation: string): boolean {
  return KEY_TYPE_DEPENDENT.has(operation);
}

/**
 * The quota class of one request. `keySpec` is the spec of the key the request names (unknown when the
 * request names none, e.g. a symmetric Decrypt, or a key that does not exist: those count as symmetric).
 */
export function quotaClass(operation: string, keySpec?: string): QuotaClass {
  if (SYMMETRIC_ONLY.has(operation)) return "symmetric";
  if (KEY_TYPE_DEPENDENT.has(operation)) {
    if (keySpec?.startsWith("RSA_")) return "rsa";
    if (keySpec?.startsWith("ECC_") || keySpec === "SM2") return "ecc";
    return "symmetric";
  }
  return `operation:${operation}`;
}

/**
 * AWS KMS's default per-second quotas for the management operations p11kms serves or will serve; any
 * other management operation gets {@link DEFAULT_MANAGEMENT_RATE}, the most common AWS value.
 */
export const DEFAULT_OPERATION_RATES: Readonly<Record<string, number>> = {
  CreateKey: 5,
  DescribeKey: 2000,
  ListKeys: 500,
  GetPublicKey: 2000,
  ListAliases: 500,
  CreateAlias: 5,
  DeleteAlias: 15,
  UpdateAlias: 5,
  TagResource: 10,
  UntagResource: 5,
  ListResourceTags: 2000,
  EnableKey: 5,
  DisableKey: 5,
  ScheduleKeyDeletion: 5,
  CancelKeyDeletion: 5,
  GetKeyRotationStatus: 1000,
  UpdateKeyDescription: 5,
  EnableKeyRotation: 5,
  DisableKeyRotation: 5,
  RotateKeyOnDemand: 5,
  ListKeyRotations: 5,
  DescribeCustomKeyStores: 5,
  ConnectCustomKeyStore: 5,
  DisconnectCustomKeyStore: 5,
  GetParametersForImport: 5,
  ImportKeyMaterial: 5,
  DeleteImportedKeyMaterial: 5,
  // AWS's default request quotas for key policies and grants.
  CreateGrant: 50,
  RetireGrant: 30,
  RevokeGrant: 30,
  ListGrants: 100,
  ListRetirableGrants: 10,
  GetKeyPolicy: 1000,
  PutKeyPolicy: 5,
  ListKeyPolicies: 100,
};
export const DEFAULT_MANAGEMENT_RATE = 5;
