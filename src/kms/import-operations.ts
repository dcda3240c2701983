import type { ServiceDeps } from "./deps.js";
import { storeOf } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import { checkImportClaims, decodeImportTokenPayload, encodeImportTokenPayload, splitImportToken } from "./import-token.js";
import { keyArn } from "./key-ids.js";
import { keyLocks } from "./key-locks.js";
import { managedKey } from "./state-operations.js";
import { EXPIRATION_MODELS, type KeyRecord, WRAPPING_ALGORITHMS, WRAPPING_KEY_SPECS } from "./types.js";
import { optionalEnum, requireBytes } from "./validate.js";

/** AWS: import parameters are valid for 24 hours; ValidTo at most 365 days ahead. */
export const PARAMETERS_VALID_MS = 24 * 3_600_000;
/** Unexpired import parameter sets (wrapping key pairs) one key store may hold at once. */
export const DEFAULT_MAX_IMPORT_PARAMETER_SETS = 100;
export const MAX_VALID_TO_MS = 365 * 86_400_000;
/** Wrapped material: a 4096-bit OAEP block plus a KWP-wrapped 256-bit key leaves room; AWS caps at 6144. */
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
 * the algorithm and the expiry. SHA-256 algorithms are refused here, before the client wraps anything,
 * when the device cannot unwrap with them (see docs/byok.md).
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
  const store = storeOf(deps, key);
  if (!store.canUnwrap(algorithm)) {
    throw new KmsError(
      "UnsupportedOperationException",
      `The key store '${store.id}' cannot unwrap with ${algorithm} on its device (no RSA-OAEP with SHA-256), and a software unwrap would expose the key material in process memory. Use ${algorithm.replace("SHA_256", "SHA_1")}.`,
    );
  }
  // Every call leaves an RSA key pair in the device for 24 h: bound how many may pile up, so that a caller
  // cannot fill the token (SoftHSM2 slows down with every object it holds). Expired ones go first.
  const now = deps.clock.now();
  await store.destroyExpiredWrappingKeys(now);
  const limit = deps.maxImportParameterSets ?? DEFAULT_MAX_IMPORT_PARAMETER_SETS;
  if (store.outstandingWrappingKeys() >= limit) {
    throw new KmsError(
      "LimitExceededException",
      `Key store '${store.id}' already holds ${limit} unexpired import parameter sets; use one of them or wait until they expire (24 hours after GetParametersForImport).`,
    );
  }
  const expiresAt = new Date(now.getTime() + PARAMETERS_VALID_MS);
  const { wrappingKeyId, publicKey } = await store.createWrappingKey(spec, expiresAt);
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
 * ImportKeyMaterial. Order: verify the token on the device, unwrap into a token object, compare its check
 * value with the one remembered from earlier imports, then record the import and enable the key in one
 * transaction. Any failure after the unwrap destroys the object: the key stays PendingImport with nothing
 * in the token (a crash in between is cleaned up by start-up reconciliation).
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
    if (fresh?.keyState !== "PendingImport") {
      throw new KmsError("KMSInvalidStateException", `ImportKeyMaterial: key ${key.keyId} is no longer PendingImport.`);
    }
    const ref = { keyId: key.keyId, version: key.currentVersion };
    await store.destroyKey(ref); // leftovers of a crashed import (the key is PendingImport: nothing legitimate is there)
    await store.importAesKey(ref, claims.wrappingKeyId, claims.algorithm, encrypted);
    try {
      const kcv = await store.keyCheckValue(ref);
      const previous = await deps.metadata.getImport(key.keyId);
      if (previous && !previous.keyCheckValue.equals(kcv)) {
        throw new KmsError("IncorrectKeyMaterialException", "The key material is not the material previously imported into this key.");
      }
      const validTo = model === "KEY_MATERIAL_EXPIRES" ? req.validTo : undefined;
      if (!(await deps.metadata.completeImport({ keyId: key.keyId, keyCheckValue: kcv, expirationModel: model, validTo }))) {
        throw new KmsError("KMSInvalidStateException", `ImportKeyMaterial: key ${key.keyId} is no longer PendingImport.`);
      }
      deps.events?.materialImported?.({
        keyId: key.keyId,
        keyStoreId: key.keyStoreId,
        wrappingAlgorithm: claims.algorithm,
        unwrapPath: "device",
        expirationModel: model,
        validTo,
      });
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
