import type { ServiceDeps } from "./deps.js";
import { storeOf } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import { checkWrappingFits } from "./import-material.js";
import { checkImportClaims, decodeImportTokenPayload, encodeImportTokenPayload, splitImportToken } from "./import-token.js";
import { keyArn } from "./key-ids.js";
import { keyLocks } from "./key-locks.js";
import { managedKey } from "./state-operations.js";
import { EXPIRATION_MODELS, type KeyRecord, type UnwrapPath, WRAPPING_ALGORITHMS, WRAPPING_KEY_SPECS } from "./types.js";
import { optionalEnum, requireBytes } from "./validate.js";

/** AWS: import parameters are valid for 24 hours; ValidTo at most 365 days ahead. */
export const PARAMETERS_VALID_MS = 24 * 3_600_000;
/** Unexpired import parameter sets (wrapping key pairs) one key store may hold at once. */
export const DEFAULT_MAX_IMPORT_PARAMETER_SETS = 100;
/**
 * Unexpired import parameter sets one key keeps: a further GetParametersForImport destroys the oldest, so
 * one caller cannot use up the key store's sets (AWS keeps every set for its 24 h; see docs/byok.md).
 */
export const DEFAULT_IMPORT_PARAMETER_SETS_PER_KEY = 5;
export const MAX_VALID_TO_MS = 365 * 86_400_000;
/** Wrapped material: a 4096-bit OAEP block plus a KWP-wrapped RSA-4096 PKCS#8 key (~2.4 KB) fits; AWS caps at 6144. */
const MAX_ENCRYPTED_BYTES = 6144;

export interface ImportParameters {
  keyId: string;
  importToken: Buffer;
  publicKey: Buffer;
  parametersValidTo: Date;
}

/** The key of an import operation: it must exist, be EXTERNAL, and be in a state the operation accepts. */
async function externalKey(deps: ServiceDeps, keyId: string | undefined, op: "GetParametersForImport" | "ImportKeyMaterial" | "DeleteImportedKeyMaterial"): Promise<KeyRecord> {
  const key = await managedKey(deps, keyId, op);
  if (key.origin !== "EXTERNAL") {
    throw new KmsError("UnsupportedOperationException", `${op}: key ${key.keyId} has Origin ${key.origin}; only EXTERNAL keys take imported material.`);
  }
  return key;
}

/**
 * GetParametersForImport: a fresh wrapping key pair in the key's token and a token binding it to this key,
 * the algorithm and the expiry. Algorithms the key store cannot unwrap with, and wrappings AWS does not
 * allow for the key's material, are refused here, before the client wraps anything (see docs/byok.md).
 */
export async function getParametersForImport(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; wrappingAlgorithm?: string | undefined; wrappingKeySpec?: string | undefined },
): Promise<ImportParameters> {
  if (req.wrappingAlgorithm === "RSAES_PKCS1_V1_5") {
    throw validation("WrappingAlgorithm RSAES_PKCS1_V1_5 is no longer supported; use RSAES_OAEP_SHA_* or RSA_AES_KEY_WRAP_SHA_*.");
  }
  const algorithm = optionalEnum("WrappingAlgorithm", req.wrappingAlgorithm, WRAPPING_ALGORITHMS);
  const spec = optionalEnum("WrappingKeySpec", req.wrappingKeySpec, WRAPPING_KEY_SPECS);
  if (!algorithm) throw validation("WrappingAlgorithm is required.");
  if (!spec) throw validation("WrappingKeySpec is required.");
  const key = await externalKey(deps, req.keyId, "GetParametersForImport");
  checkWrappingFits(key.keySpec, algorithm, spec);
  const store = storeOf(deps, key);
  if (!store.unwrapPath(algorithm)) {
    throw new KmsError(
      "UnsupportedOperationException",
      `The key store '${store.id}' cannot unwrap ${algorithm}: its device lacks RSA-OAEP with SHA-256 and its importOaepSha256Fallback setting does not allow decoding it in the process. Use ${algorithm.replace("SHA_256", "SHA_1")}.`,
    );
  }
  // Every call leaves an RSA key pair in the device for 24 h: bound how many may pile up, per key (the
  // oldest of this key go) and per store (refused), so that a caller cannot fill the token (SoftHSM2 slows
  // down with every object it holds). Expired ones go first.
  const now = deps.clock.now();
  await store.destroyExpiredWrappingKeys(now);
  await store.destroyOldWrappingKeys(key.keyId, (deps.importParameterSetsPerKey ?? DEFAULT_IMPORT_PARAMETER_SETS_PER_KEY) - 1);
  const limit = deps.maxImportParameterSets ?? DEFAULT_MAX_IMPORT_PARAMETER_SETS;
  if (store.outstandingWrappingKeys() >= limit) {
    throw new KmsError(
      "LimitExceededException",
      `Key store '${store.id}' already holds ${limit} unexpired import parameter sets; use one of them or wait until they expire (24 hours after GetParametersForImport).`,
    );
  }
  const expiresAt = new Date(now.getTime() + PARAMETERS_VALID_MS);
  const { wrappingKeyId, publicKey } = await store.createWrappingKey(key.keyId, spec, algorithm, expiresAt);
  const payload = encodeImportTokenPayload({ keyId: key.keyId, wrappingKeyId, algorithm, expiresAt });
  const mac = await store.signImportToken(payload);
  return { keyId: keyArn(deps.partition, key.keyId), importToken: Buffer.concat([payload, mac]), publicKey, parametersValidTo: expiresAt };
}

export interface ImportKeyMaterialRequest {
  keyId?: string | undefined;
  importToken?: Uint8Array | undefined;
  encryptedKeyMaterial?: Uint8Array | undefined;
  expirationModel?: string | undefined;
  validTo?: Date | undefined;
}

/**
 * ImportKeyMaterial. Order: verify the token on the device, then under the key's lock:
 * - PendingImport: unwrap into token objects, compare their check value with the one remembered from
 *   earlier imports, then record the import and enable the key in one transaction. Any failure after the
 *   unwrap destroys the objects: the key stays PendingImport with nothing in the token (a crash in between
 *   is cleaned up by start-up reconciliation).
 * - Enabled or Disabled (material present): AWS lets the same material be imported again to change its
 *   expiration. It is unwrapped into session objects only to compare check values, which are destroyed at
 *   once; the same material → only the expiration changes, other material → IncorrectKeyMaterialException.
 */
export async function importKeyMaterial(deps: ServiceDeps, req: ImportKeyMaterialRequest): Promise<void> {
  const token = requireBytes("ImportToken", req.importToken, 1, 4096);
  const encrypted = requireBytes("EncryptedKeyMaterial", req.encryptedKeyMaterial, 1, MAX_ENCRYPTED_BYTES);
  const model = optionalEnum("ExpirationModel", req.expirationModel, EXPIRATION_MODELS) ?? (req.validTo ? "KEY_MATERIAL_EXPIRES" : "KEY_MATERIAL_DOES_NOT_EXPIRE");
  const now = deps.clock.now();
  if (model === "KEY_MATERIAL_EXPIRES") {
    if (!req.validTo) throw validation("ValidTo is required when ExpirationModel is KEY_MATERIAL_EXPIRES.");
    if (req.validTo.getTime() <= now.getTime()) throw validation("ValidTo must be in the future.");
    if (req.validTo.getTime() > now.getTime() + MAX_VALID_TO_MS) throw validation("ValidTo must be at most 365 days from now.");
  } else if (req.validTo) {
    throw validation("ValidTo must be omitted when ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.");
  }
  const validTo = model === "KEY_MATERIAL_EXPIRES" ? req.validTo : undefined;
  const key = await externalKey(deps, req.keyId, "ImportKeyMaterial");
  const store = storeOf(deps, key);
  const { payload, mac } = splitImportToken(token);
  if (!(await store.verifyImportToken(payload, mac))) {
    throw new KmsError("InvalidImportTokenException", "The import token is invalid or does not belong to this key.");
  }
  const claims = decodeImportTokenPayload(payload);
  checkImportClaims(claims, key.keyId, now);

  await keyLocks.run(key.keyId, async () => {
    const fresh = await deps.metadata.getKey(key.keyId);
    const state = fresh?.keyState;
    const ref = { keyId: key.keyId, version: key.currentVersion };
    const unwrap = { ref, keySpec: key.keySpec, keyUsage: key.keyUsage, wrappingKeyId: claims.wrappingKeyId, algorithm: claims.algorithm, encrypted };
    const previous = await deps.metadata.getImport(key.keyId);
    const report = (unwrapPath: UnwrapPath, reimport: boolean) =>
      deps.events?.materialImported?.({ keyId: key.keyId, keyStoreId: key.keyStoreId, wrappingAlgorithm: claims.algorithm, unwrapPath, expirationModel: model, validTo, reimport });
    const different = () => new KmsError("IncorrectKeyMaterialException", "The key material is not the material previously imported into this key.");

    if (state === "Enabled" || state === "Disabled") {
      const { checkValue, unwrapPath } = await store.unwrapKeyMaterial({ ...unwrap, compareOnly: true });
      if (!previous?.keyCheckValue.equals(checkValue)) throw different();
      if (!(await deps.metadata.updateImportExpiry({ keyId: key.keyId, expirationModel: model, validTo }, state))) {
        throw new KmsError("KMSInvalidStateException", `ImportKeyMaterial: key ${key.keyId} changed state meanwhile.`);
      }
      report(unwrapPath, true);
      return;
    }
    if (state !== "PendingImport") {
      throw new KmsError("KMSInvalidStateException", `ImportKeyMaterial: key ${key.keyId} is ${state ?? "gone"}; material can be imported into PendingImport, Enabled or Disabled keys.`);
    }
    await store.destroyKey(ref); // leftovers of a crashed import (the key is PendingImport: nothing legitimate is there)
    const { checkValue, unwrapPath } = await store.unwrapKeyMaterial({ ...unwrap, compareOnly: false });
    try {
      if (previous && !previous.keyCheckValue.equals(checkValue)) throw different();
      if (!(await deps.metadata.completeImport({ keyId: key.keyId, keyCheckValue: checkValue, expirationModel: model, validTo }))) {
        throw new KmsError("KMSInvalidStateException", `ImportKeyMaterial: key ${key.keyId} is no longer PendingImport.`);
      }
      report(unwrapPath, false);
    } catch (err) {
      await store.destroyKey(ref);
      throw err;
    }
  });
}

/** DeleteImportedKeyMaterial: the key returns to PendingImport first (unusable), then the object is destroyed. */
export async function deleteImportedKeyMaterial(deps: ServiceDeps, req: { keyId?: string | undefined }): Promise<void> {
  const key = await externalKey(deps, req.keyId, "DeleteImportedKeyMaterial");
  const store = storeOf(deps, key);
  await keyLocks.run(key.keyId, async () => {
    const fresh = await deps.metadata.getKey(key.keyId);
    if (fresh && (fresh.keyState === "Enabled" || fresh.keyState === "Disabled")) {
      if (!(await deps.metadata.removeMaterial(key.keyId, fresh.keyState))) {
        throw new KmsError("KMSInvalidStateException", `DeleteImportedKeyMaterial: key ${key.keyId} changed state meanwhile.`);
      }
    }
    await store.destroyKey({ keyId: key.keyId, version: key.currentVersion });
    deps.events?.materialRemoved?.({ keyId: key.keyId, keyStoreId: key.keyStoreId, reason: "deleted" });
  });
}

/**
 * The expiry job of one key whose ValidTo passed: same order as deletion of material (state first, so no
 * request can use it, then the object). Returns false when it no longer applied (deleted meanwhile).
 */
export async function expireMaterial(deps: ServiceDeps, key: KeyRecord): Promise<boolean> {
  const store = storeOf(deps, key);
  return keyLocks.run(key.keyId, async () => {
    if (!(await deps.metadata.removeMaterial(key.keyId, key.keyState))) return false;
    await store.destroyKey({ keyId: key.keyId, version: key.currentVersion });
    deps.events?.materialRemoved?.({ keyId: key.keyId, keyStoreId: key.keyStoreId, reason: "expired" });
    return true;
  });
}
