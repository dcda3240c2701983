/**
 * The allow-list of what an audit event may say about a request and its response, per operation. Only the
 * fields named here are copied; everything else — and every field added to a request later — is dropped,
 * so plaintext, data keys, key material, messages, signatures, MACs, import tokens and grant tokens can
 * never reach the audit log. Values are read from the *domain* request and response, never the wire, so
 * both APIs produce the same event.
 *
 * `true` admits a scalar, a list of strings or a string→string map (an encryption context); a nested spec
 * admits an object (or each object of a list) through that spec.
 */
export interface FieldSpec {
  readonly [field: string]: true | FieldSpec;
}

const KEY: FieldSpec = { keyId: true };
const TAGS: FieldSpec = { tagKey: true, tagValue: true };
const DATA_KEY: FieldSpec = { keyId: true, encryptionContext: true, numberOfBytes: true, keySpec: true, dryRun: true };
const DATA_KEY_PAIR: FieldSpec = { keyId: true, keyPairSpec: true, encryptionContext: true, dryRun: true };
const SIGN: FieldSpec = { keyId: true, messageType: true, signingAlgorithm: true, dryRun: true };
const MAC: FieldSpec = { keyId: true, macAlgorithm: true, dryRun: true };
const PAGE: FieldSpec = { limit: true };
const LIST_OUT: FieldSpec = { truncated: true };
const KEY_METADATA: FieldSpec = {
  keyId: true,
  arn: true,
  keyState: true,
  keySpec: true,
  keyUsage: true,
  origin: true,
  customKeyStoreId: true,
  creationDate: true,
  deletionDate: true,
};

interface OperationSpec {
  readonly request: FieldSpec;
  readonly response: FieldSpec;
}

export const AUDIT_FIELDS: Readonly<Record<string, OperationSpec>> = {
  CreateKey: {
    request: { description: true, keyUsage: true, keySpec: true, customerMasterKeySpec: true, origin: true, multiRegion: true, tags: TAGS, customKeyStoreId: true },
    response: { keyMetadata: KEY_METADATA },
  },
  DescribeKey: { request: KEY, response: {} },
  ListKeys: { request: PAGE, response: LIST_OUT },
  Encrypt: { request: { keyId: true, encryptionContext: true, encryptionAlgorithm: true, dryRun: true }, response: { keyId: true, encryptionAlgorithm: true } },
  Decrypt: { request: { keyId: true, encryptionContext: true, encryptionAlgorithm: true, dryRun: true }, response: { keyId: true, encryptionAlgorithm: true } },
  ReEncrypt: {
    request: {
      sourceKeyId: true,
      destinationKeyId: true,
      sourceEncryptionContext: true,
      destinationEncryptionContext: true,
      sourceEncryptionAlgorithm: true,
      destinationEncryptionAlgorithm: true,
      dryRun: true,
    },
    response: { sourceKeyId: true, keyId: true, sourceEncryptionAlgorithm: true, destinationEncryptionAlgorithm: true },
  },
  GenerateDataKey: { request: DATA_KEY, response: KEY },
  GenerateDataKeyWithoutPlaintext: { request: DATA_KEY, response: KEY },
  GenerateRandom: { request: { numberOfBytes: true, customKeyStoreId: true }, response: {} },
  GetPublicKey: { request: KEY, response: { keyId: true, keySpec: true, keyUsage: true } },
  Sign: { request: SIGN, response: { keyId: true, signingAlgorithm: true } },
  Verify: { request: SIGN, response: { keyId: true, signatureValid: true, signingAlgorithm: true } },
  GenerateMac: { request: MAC, response: { keyId: true, macAlgorithm: true } },
  VerifyMac: { request: MAC, response: { keyId: true, macValid: true, macAlgorithm: true } },
  GenerateDataKeyPair: { request: DATA_KEY_PAIR, response: { keyId: true, keyPairSpec: true } },
  GenerateDataKeyPairWithoutPlaintext: { request: DATA_KEY_PAIR, response: { keyId: true, keyPairSpec: true } },
  CreateAlias: { request: { aliasName: true, targetKeyId: true }, response: {} },
  UpdateAlias: { request: { aliasName: true, targetKeyId: true }, response: {} },
  DeleteAlias: { request: { aliasName: true }, response: {} },
  ListAliases: { request: { keyId: true, limit: true }, response: LIST_OUT },
  EnableKey: { request: KEY, response: {} },
  DisableKey: { request: KEY, response: {} },
  ScheduleKeyDeletion: {
    request: { keyId: true, pendingWindowInDays: true },
    response: { keyId: true, deletionDate: true, keyState: true, pendingWindowInDays: true },
  },
  CancelKeyDeletion: { request: KEY, response: KEY },
  UpdateKeyDescription: { request: { keyId: true, description: true }, response: {} },
  TagResource: { request: { keyId: true, tags: TAGS }, response: {} },
  UntagResource: { request: { keyId: true, tagKeys: true }, response: {} },
  ListResourceTags: { request: { keyId: true, limit: true }, response: LIST_OUT },
  EnableKeyRotation: { request: { keyId: true, rotationPeriodInDays: true }, response: {} },
  DisableKeyRotation: { request: KEY, response: {} },
  GetKeyRotationStatus: { request: KEY, response: { keyRotationEnabled: true, rotationPeriodInDays: true, nextRotationDate: true } },
  RotateKeyOnDemand: { request: KEY, response: KEY },
  ListKeyRotations: { request: { keyId: true, limit: true }, response: LIST_OUT },
  DescribeCustomKeyStores: { request: { customKeyStoreId: true, customKeyStoreName: true, limit: true }, response: LIST_OUT },
  ConnectCustomKeyStore: { request: { customKeyStoreId: true }, response: {} },
  DisconnectCustomKeyStore: { request: { customKeyStoreId: true }, response: {} },
  GetParametersForImport: { request: { keyId: true, wrappingAlgorithm: true, wrappingKeySpec: true }, response: { keyId: true, parametersValidTo: true } },
  ImportKeyMaterial: { request: { keyId: true, expirationModel: true, validTo: true }, response: {} },
  DeleteImportedKeyMaterial: { request: KEY, response: {} },
  PutKeyPolicy: { request: { keyId: true, policyName: true, policy: true, bypassPolicyLockoutSafetyCheck: true }, response: {} },
  GetKeyPolicy: { request: { keyId: true, policyName: true }, response: {} },
  ListKeyPolicies: { request: { keyId: true, limit: true }, response: LIST_OUT },
  // Never the grant token (a bearer credential): only the grant's id.
  CreateGrant: {
    request: {
      keyId: true,
      granteePrincipal: true,
      retiringPrincipal: true,
      operations: true,
      constraints: { encryptionContextSubset: true, encryptionContextEquals: true },
      name: true,
      dryRun: true,
    },
    response: { grantId: true },
  },
  ListGrants: { request: { keyId: true, grantId: true, granteePrincipal: true, limit: true }, response: LIST_OUT },
  ListRetirableGrants: { request: { retiringPrincipal: true, limit: true }, response: LIST_OUT },
  RetireGrant: { request: { keyId: true, grantId: true, dryRun: true }, response: {} },
  RevokeGrant: { request: { keyId: true, grantId: true, dryRun: true }, response: {} },
  WatchAuditEvents: { request: { eventNames: true, keyIds: true }, response: {} },
  // What the daemon does on its own (internal-events.ts).
  DeleteKey: { request: KEY, response: {} },
  RotateKey: { request: KEY, response: {} },
  DeleteExpiredKeyMaterial: { request: KEY, response: {} },
};

const MAX_STRING = 2048;

/**
 * Copies the allowed fields of `value`. Absent-looking values ("" , 0, false, empty lists and maps) are
 * omitted: proto3 cannot tell them from "not sent", and omitting them on both APIs keeps events identical.
 * Byte strings are never copied, whatever the spec says. Returns null when nothing is left.
 */
export function redact(value: unknown, spec: FieldSpec | undefined): Record<string, unknown> | null {
  if (!spec || typeof value !== "object" || value === null) return null;
  const out: Record<string, unknown> = {};
  for (const [field, sub] of Object.entries(spec)) {
    const v = scalarOrNested((value as Record<string, unknown>)[field], sub);
    if (v !== undefined) out[field] = v;
  }
  return Object.keys(out).length > 0 ? out : null;
}

function scalarOrNested(v: unknown, spec: true | FieldSpec): unknown {
  if (v === undefined || v === null || v === "" || v === 0 || v === false) return undefined;
  if (v instanceof Uint8Array) return undefined;
  if (spec !== true) {
    if (Array.isArray(v)) {
      const items = v.map((x) => redact(x, spec)).filter((x) => x !== null);
      return items.length > 0 ? items : undefined;
    }
    return redact(v, spec) ?? undefined;
  }
  if (typeof v === "string") return v.length > MAX_STRING ? `${v.slice(0, MAX_STRING)}…` : v;
  if (typeof v === "number" || typeof v === "boolean") return v;
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.toISOString();
  if (Array.isArray(v)) {
    const items = v.filter((x): x is string => typeof x === "string").map((x) => x.slice(0, MAX_STRING));
    return items.length > 0 ? items : undefined;
  }
  // A string→string map (encryption context): plain objects and Maps, string values only.
  const entries = v instanceof Map ? [...(v as Map<unknown, unknown>).entries()] : Object.entries(v as object);
  const map: Record<string, string> = {};
  let n = 0;
  for (const [k, x] of entries) {
    if (typeof k === "string" && typeof x === "string") {
      Object.defineProperty(map, k, { value: x.slice(0, MAX_STRING), enumerable: true, writable: true, configurable: true });
      n++;
    }
  }
  return n > 0 ? map : undefined;
}
