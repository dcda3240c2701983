import { randomUUID } from "node:crypto";
import { type ServiceDeps, requestAccess, authorizeAccount, authorizedKey } from "./deps.js";
import { defaultPolicy, type ParsedPolicy, parsePolicy } from "./authz/policy.js";
import { administratorOf, checkNewPolicy } from "./policy-operations.js";
import { KmsError, validation } from "./errors.js";
import { IMPORTABLE_KEY_SPECS } from "./import-material.js";
import { keyArn, parseKeyId } from "./key-ids.js";
import { connectedStore } from "./key-store-operations.js";
import { allowedUsages, encryptionAlgorithmsFor, macAlgorithmsFor, signingAlgorithmsFor } from "./rules.js";
import {
  KEY_SPECS,
  KEY_USAGES,
  ORIGINS,
  SUPPORTED_KEY_SPECS,
  isAsymmetricSpec,
  isHmacSpec,
  type KeyMetadata,
  type KeyRecord,
  type Tag,
} from "./types.js";
import { optionalEnum, optionalInt, requireString, validateGrantTokens, validateTags } from "./validate.js";

export interface CreateKeyRequest {
  description?: string | undefined;
  keySpec?: string | undefined;
  /** Deprecated AWS name for KeySpec; accepted when KeySpec is absent. */
  customerMasterKeySpec?: string | undefined;
  keyUsage?: string | undefined;
  origin?: string | undefined;
  multiRegion?: boolean | undefined;
  tags?: readonly Tag[] | undefined;
  /** The key store (configured `keyStores[].id`) to create the key in; the default store when absent. */
  customKeyStoreId?: string | undefined;
  /** The key policy (JSON); the default policy (full access for the administrator) when absent. */
  policy?: string | undefined;
  bypassPolicyLockoutSafetyCheck?: boolean | undefined;
}

/**
 * CreateKey. The record is written first in state Creating (invisible to clients), then the material is
 * generated in the token, then the record turns Enabled. A crash between the steps leaves a Creating
 * record that start-up reconciliation removes together with any half-made object.
 */
export async function createKey(deps: ServiceDeps, req: CreateKeyRequest): Promise<KeyMetadata> {
  const description = requireString("Description", req.description, 0, 8192);
  if (req.keySpec && req.customerMasterKeySpec && req.keySpec !== req.customerMasterKeySpec) {
    throw validation("KeySpec and CustomerMasterKeySpec differ; use KeySpec only.");
  }
  const keySpec = optionalEnum("KeySpec", req.keySpec || req.customerMasterKeySpec, KEY_SPECS) ?? "SYMMETRIC_DEFAULT";
  const keyUsage = optionalEnum("KeyUsage", req.keyUsage, KEY_USAGES) ?? allowedUsages(keySpec)[0]!;
  const origin = optionalEnum("Origin", req.origin, ORIGINS) ?? "AWS_KMS";
  const tags = validateTags(req.tags);
  if (!allowedUsages(keySpec).includes(keyUsage)) {
    throw validation(`KeyUsage ${keyUsage} is not valid for KeySpec ${keySpec}.`);
  }
  if (!SUPPORTED_KEY_SPECS.includes(keySpec)) {
    throw new KmsError("UnsupportedOperationException", `KeySpec ${keySpec} is not supported by this service yet.`);
  }
  if (origin !== "AWS_KMS" && origin !== "EXTERNAL") {
    throw new KmsError("UnsupportedOperationException", `Origin ${origin} is not supported by this service.`);
  }
  if (origin === "EXTERNAL" && !IMPORTABLE_KEY_SPECS.includes(keySpec)) {
    throw new KmsError("UnsupportedOperationException", `Origin EXTERNAL is not supported for KeySpec ${keySpec} here (docs/byok.md).`);
  }
  if (req.multiRegion) throw new KmsError("UnsupportedOperationException", "Multi-Region keys are not supported.");
  if (keyUsage === "KEY_AGREEMENT") {
    throw new KmsError("UnsupportedOperationException", "KeyUsage KEY_AGREEMENT is not supported by this service yet.");
  }

  authorizeAccount(deps, "CreateKey");
  const keyId = randomUUID();
  // Validated (and lockout-checked) before anything is written: a bad policy creates no key.
  let policyText: string;
  let parsed: ParsedPolicy;
  if (req.policy !== undefined && req.policy !== "") {
    parsed = checkNewPolicy(deps, requestAccess(deps), keyId, req.policy, req.bypassPolicyLockoutSafetyCheck);
    policyText = req.policy;
  } else {
    policyText = defaultPolicy(administratorOf(deps));
    parsed = parsePolicy(policyText);
  }
  const store = connectedStore(deps, req.customKeyStoreId);
  if (!store.capabilities.keySpecs.includes(keySpec)) {
    throw new KmsError("UnsupportedOperationException", `The key store '${store.id}' cannot create ${keySpec} keys (its device lacks the mechanisms).`);
  }
  const now = deps.clock.now();
  const record: KeyRecord = {
    keyId,
    keyStoreId: store.id,
    description,
    keySpec,
    keyUsage,
    origin,
    // An EXTERNAL key has no material until ImportKeyMaterial: nothing to generate, so no Creating step.
    keyState: origin === "EXTERNAL" ? "PendingImport" : "Creating",
    creationDate: now,
    currentVersion: 1,
  };
  await deps.metadata.insertKey({ record, tags, policy: policyText });
  deps.authz?.remember(record.keyId, parsed);
  if (origin === "EXTERNAL") return toMetadata(deps, record);
  try {
    const ref = { keyId: record.keyId, version: 1 };
    if (isAsymmetricSpec(keySpec)) await store.generateKeyPair(ref, keySpec, keyUsage);
    else if (isHmacSpec(keySpec)) await store.generateHmacKey(ref, keySpec);
    else await store.generateAesKey(ref);
  } catch (err) {
    // Nothing was acknowledged: undo the record so no half-made key remains.
    await deps.metadata.deleteKey(record.keyId).catch(() => undefined);
    throw err;
  }
  await deps.metadata.updateKeyState(record.keyId, "Creating", "Enabled");
  return toMetadata(deps, { ...record, keyState: "Enabled" });
}

export async function describeKey(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; grantTokens?: readonly string[] | undefined },
): Promise<KeyMetadata> {
  const keyId = parseKeyId(deps.partition, req.keyId, "KeyId", { aliases: true });
  validateGrantTokens(req.grantTokens);
  const key = await authorizedKey(deps, keyId, "DescribeKey", { grantTokens: req.grantTokens });
  const imported = key.origin === "EXTERNAL" ? await deps.metadata.getImport(key.keyId) : undefined;
  return { ...toMetadata(deps, key), expirationModel: imported?.expirationModel, validTo: imported?.validTo };
}

export interface ListKeysResult {
  keys: { keyId: string; keyArn: string }[];
  nextMarker?: string | undefined;
  truncated: boolean;
}

/** ListKeys: ordered by key id; the marker is the last key id returned, opaque to clients. */
export async function listKeys(
  deps: ServiceDeps,
  req: { limit?: number | undefined; marker?: string | undefined },
): Promise<ListKeysResult> {
  const limit = optionalInt("Limit", req.limit, 1, 1000) ?? 100;
  authorizeAccount(deps, "ListKeys");
  const after = req.marker ? decodeMarker(req.marker) : undefined;
  const rows = await deps.metadata.listKeys({ afterKeyId: after, limit: limit + 1 });
  const page = rows.slice(0, limit);
  const truncated = rows.length > limit;
  return {
    keys: page.map((k) => ({ keyId: k.keyId, keyArn: keyArn(deps.partition, k.keyId) })),
    truncated,
    nextMarker: truncated ? encodeMarker(page[page.length - 1]!.keyId) : undefined,
  };
}

const MARKER_PREFIX = "k1:";

function encodeMarker(keyId: string): string {
  return Buffer.from(MARKER_PREFIX + keyId, "utf8").toString("base64url");
}

function decodeMarker(marker: string): string {
  const text = marker.length <= 1024 ? Buffer.from(marker, "base64url").toString("utf8") : "";
  if (!text.startsWith(MARKER_PREFIX) || text.length <= MARKER_PREFIX.length) {
    throw new KmsError("InvalidMarkerException", "The Marker is not one this service returned.");
  }
  return text.slice(MARKER_PREFIX.length);
}

export function toMetadata(deps: ServiceDeps, k: KeyRecord): KeyMetadata {
  return {
    awsAccountId: deps.partition.accountId,
    keyId: k.keyId,
    arn: keyArn(deps.partition, k.keyId),
    creationDate: k.creationDate,
    enabled: k.keyState === "Enabled",
    description: k.description,
    keyUsage: k.keyUsage,
    keyState: k.keyState,
    deletionDate: k.deletionDate,
    origin: k.origin,
    keyManager: "CUSTOMER",
    keySpec: k.keySpec,
    encryptionAlgorithms: encryptionAlgorithmsFor(k.keySpec, k.keyUsage),
    signingAlgorithms: signingAlgorithmsFor(k.keySpec, k.keyUsage),
    macAlgorithms: macAlgorithmsFor(k.keySpec, k.keyUsage),
    customKeyStoreId: k.keyStoreId,
    rsaOaepSha256Decryption:
      k.keySpec.startsWith("RSA_") && k.keyUsage === "ENCRYPT_DECRYPT"
        ? (deps.keyStores.get(k.keyStoreId)?.capabilities.rsaOaepSha256 ?? "unsupported")
        : undefined,
  };
}
