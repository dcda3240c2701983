import { type ServiceDeps, authorizeAccount, authorizedKey, checkUsable, loadKey, storeOf } from "./deps.js";
import { validateEncryptionContext } from "./encryption-context.js";
import { validation } from "./errors.js";
import { keyArn, parseKeyId } from "./key-ids.js";
import { connectedStore } from "./key-store-operations.js";
import type { AuthzContext } from "./authz/authorizer.js";
import { assertAlgorithm } from "./rules.js";
import { decryptWith, encryptWith } from "./rsa-encryption.js";
import { seal } from "./sealing.js";
import {
  DATA_KEY_SPECS,
  ENCRYPTION_ALGORITHMS,
  type EncryptionAlgorithm,
  type EncryptionContext,
  type KeyRecord,
} from "./types.js";
import { dryRunStop, optionalEnum, optionalInt, requireBytes, validateGrantTokens } from "./validate.js";

/** AWS limits: Encrypt takes 1–4096 bytes of plaintext; a ciphertext blob is 1–6144 bytes. */
export const MAX_PLAINTEXT = 4096;
export const MAX_CIPHERTEXT_BLOB = 6144;

interface Common {
  grantTokens?: readonly string[] | undefined;
  dryRun?: boolean | undefined;
}

export interface EncryptRequest extends Common {
  keyId?: string | undefined;
  plaintext?: Uint8Array | undefined;
  encryptionContext?: EncryptionContext | undefined;
  encryptionAlgorithm?: string | undefined;
}
export interface EncryptResult {
  ciphertextBlob: Buffer;
  keyId: string;
  encryptionAlgorithm: EncryptionAlgorithm;
}

export async function encrypt(deps: ServiceDeps, req: EncryptRequest): Promise<EncryptResult> {
  const keyId = parseKeyId(deps.partition, req.keyId, "KeyId", ALIASES);
  const plaintext = requireBytes("Plaintext", req.plaintext, 1, MAX_PLAINTEXT);
  const context = checkContext(req.encryptionContext);
  const requested = optionalEnum("EncryptionAlgorithm", req.encryptionAlgorithm, ENCRYPTION_ALGORITHMS);
  validateGrantTokens(req.grantTokens);
  const key = await usableKey(deps, keyId, "Encrypt", { encryptionContext: context, grantTokens: req.grantTokens, algorithm: encAlg(requested) });
  const algorithm = assertAlgorithm(key, requested);
  dryRunStop(req);
  const ciphertextBlob = await encryptWith(deps, key, algorithm, plaintext, context);
  return { ciphertextBlob, keyId: keyArn(deps.partition, key.keyId), encryptionAlgorithm: algorithm };
}

export interface DecryptRequest extends Common {
  ciphertextBlob?: Uint8Array | undefined;
  encryptionContext?: EncryptionContext | undefined;
  keyId?: string | undefined;
  encryptionAlgorithm?: string | undefined;
}
export interface DecryptResult {
  keyId: string;
  plaintext: Buffer;
  encryptionAlgorithm: EncryptionAlgorithm;
}

export async function decrypt(deps: ServiceDeps, req: DecryptRequest): Promise<DecryptResult> {
  const blob = requireBytes("CiphertextBlob", req.ciphertextBlob, 1, MAX_CIPHERTEXT_BLOB);
  const context = checkContext(req.encryptionContext);
  const expected = req.keyId ? parseKeyId(deps.partition, req.keyId, "KeyId", ALIASES) : undefined;
  const requested = optionalEnum("EncryptionAlgorithm", req.encryptionAlgorithm, ENCRYPTION_ALGORITHMS);
  validateGrantTokens(req.grantTokens);
  // A KeyId that names no key is NotFoundException, as AWS.
  const named = expected ? await loadKey(deps, expected) : undefined;
  const { key, plaintext, algorithm } = await decryptWith(deps, blob, context, named, requested, "KeyId", req.grantTokens);
  if (req.dryRun) {
    plaintext.fill(0);
    dryRunStop(req);
  }
  return { keyId: keyArn(deps.partition, key.keyId), plaintext, encryptionAlgorithm: algorithm };
}

export interface ReEncryptRequest {
  ciphertextBlob?: Uint8Array | undefined;
  sourceEncryptionContext?: EncryptionContext | undefined;
  sourceKeyId?: string | undefined;
  destinationKeyId?: string | undefined;
  destinationEncryptionContext?: EncryptionContext | undefined;
  sourceEncryptionAlgorithm?: string | undefined;
  destinationEncryptionAlgorithm?: string | undefined;
  grantTokens?: readonly string[] | undefined;
  dryRun?: boolean | undefined;
}
export interface ReEncryptResult {
  ciphertextBlob: Buffer;
  sourceKeyId: string;
  keyId: string;
  sourceEncryptionAlgorithm: EncryptionAlgorithm;
  destinationEncryptionAlgorithm: EncryptionAlgorithm;
}

/** ReEncrypt: the plaintext exists only inside this call and is wiped before it returns. */
export async function reEncrypt(deps: ServiceDeps, req: ReEncryptRequest): Promise<ReEncryptResult> {
  const blob = requireBytes("CiphertextBlob", req.ciphertextBlob, 1, MAX_CIPHERTEXT_BLOB);
  const sourceContext = checkContext(req.sourceEncryptionContext);
  const destContext = checkContext(req.destinationEncryptionContext);
  const sourceExpected = req.sourceKeyId ? parseKeyId(deps.partition, req.sourceKeyId, "SourceKeyId", ALIASES) : undefined;
  const destId = parseKeyId(deps.partition, req.destinationKeyId, "DestinationKeyId", ALIASES);
  const srcAlg = optionalEnum("SourceEncryptionAlgorithm", req.sourceEncryptionAlgorithm, ENCRYPTION_ALGORITHMS);
  const dstAlg = optionalEnum(
    "DestinationEncryptionAlgorithm",
    req.destinationEncryptionAlgorithm,
    ENCRYPTION_ALGORITHMS,
  );
  validateGrantTokens(req.grantTokens);
  const named = sourceExpected ? await loadKey(deps, sourceExpected) : undefined;
  const dest = await usableKey(deps, destId, "ReEncrypt", { encryptionContext: destContext, grantTokens: req.grantTokens, algorithm: encAlg(dstAlg) }, "ReEncryptTo");
  const destinationEncryptionAlgorithm = assertAlgorithm(dest, dstAlg);
  const {
    key: source,
    plaintext,
    algorithm: sourceEncryptionAlgorithm,
  } = await decryptWith(deps, blob, sourceContext, named, srcAlg, "SourceKeyId", req.grantTokens);
  try {
    dryRunStop(req);
    const ciphertextBlob = await encryptWith(deps, dest, destinationEncryptionAlgorithm, plaintext, destContext);
    return {
      ciphertextBlob,
      sourceKeyId: keyArn(deps.partition, source.keyId),
      keyId: keyArn(deps.partition, dest.keyId),
      sourceEncryptionAlgorithm,
      destinationEncryptionAlgorithm,
    };
  } finally {
    plaintext.fill(0);
  }
}

export interface GenerateDataKeyRequest extends Common {
  keyId?: string | undefined;
  encryptionContext?: EncryptionContext | undefined;
  numberOfBytes?: number | undefined;
  keySpec?: string | undefined;
}
export interface GenerateDataKeyResult {
  ciphertextBlob: Buffer;
  plaintext: Buffer;
  keyId: string;
}

/** GenerateDataKey: the data key comes from the device RNG and is sealed under the KMS key. */
export async function generateDataKey(
  deps: ServiceDeps,
  req: GenerateDataKeyRequest,
  operation = "GenerateDataKey",
): Promise<GenerateDataKeyResult> {
  const keyId = parseKeyId(deps.partition, req.keyId, "KeyId", ALIASES);
  const context = checkContext(req.encryptionContext);
  const spec = optionalEnum("KeySpec", req.keySpec, DATA_KEY_SPECS);
  const count = optionalInt("NumberOfBytes", req.numberOfBytes, 1, 1024);
  if ((spec === undefined) === (count === undefined)) {
    throw validation("Specify exactly one of KeySpec or NumberOfBytes.");
  }
  validateGrantTokens(req.grantTokens);
  const key = await usableKey(deps, keyId, "GenerateDataKey", { encryptionContext: context, grantTokens: req.grantTokens, algorithm: encAlg(undefined) }, operation);
  assertAlgorithm(key, "SYMMETRIC_DEFAULT");
  dryRunStop(req);
  const length = count ?? (spec === "AES_128" ? 16 : 32);
  const plaintext = await storeOf(deps, key).generateRandom(length);
  const ciphertextBlob = await seal(deps, key, plaintext, context);
  return { ciphertextBlob, plaintext, keyId: keyArn(deps.partition, key.keyId) };
}

/** GenerateDataKeyWithoutPlaintext: as GenerateDataKey, and the plaintext is wiped, never returned. */
export async function generateDataKeyWithoutPlaintext(
  deps: ServiceDeps,
  req: GenerateDataKeyRequest,
): Promise<Omit<GenerateDataKeyResult, "plaintext">> {
  const { plaintext, ...rest } = await generateDataKey(deps, req, "GenerateDataKeyWithoutPlaintext");
  plaintext.fill(0);
  return rest;
}

export async function generateRandom(
  deps: ServiceDeps,
  req: { numberOfBytes?: number | undefined; customKeyStoreId?: string | undefined },
): Promise<{ plaintext: Buffer }> {
  const count = optionalInt("NumberOfBytes", req.numberOfBytes, 1, 1024);
  if (count === undefined) throw validation("NumberOfBytes is required.");
  authorizeAccount(deps, "GenerateRandom");
  return { plaintext: await connectedStore(deps, req.customKeyStoreId || undefined).generateRandom(count) };
}

/** kms:EncryptionAlgorithm of a request: the one it names, else SYMMETRIC_DEFAULT (as AWS). */
function encAlg(requested: string | undefined): AuthzContext["algorithm"] {
  return { kind: "EncryptionAlgorithm", value: requested ?? "SYMMETRIC_DEFAULT" };
}

/** Where AWS accepts a key id, key ARN, alias name or alias ARN. */
const ALIASES = { aliases: true };

/** Loads the key, authorizes `action` (the operation unless a grant/policy action differs, e.g. ReEncryptTo), checks usability. */
async function usableKey(deps: ServiceDeps, keyId: string, operation: string, ctx: AuthzContext, action = operation): Promise<KeyRecord> {
  const key = await authorizedKey(deps, keyId, action, ctx);
  checkUsable(deps, key, "ENCRYPT_DECRYPT", operation);
  return key;
}

function checkContext(ctx: EncryptionContext | undefined): EncryptionContext {
  const c = ctx ?? {};
  validateEncryptionContext(c);
  return c;
}
