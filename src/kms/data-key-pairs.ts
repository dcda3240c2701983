import { validateEncryptionContext } from "./encryption-context.js";
import { type ServiceDeps, authorizedKey, checkUsable, storeOf } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import { keyArn, parseKeyId } from "./key-ids.js";
import { assertAlgorithm } from "./rules.js";
import { seal } from "./sealing.js";
import { DATA_KEY_PAIR_SPECS, isAsymmetricSpec, type DataKeyPairSpec, type EncryptionContext } from "./types.js";
import { dryRunStop, optionalEnum, validateGrantTokens } from "./validate.js";

/** GenerateDataKeyPair(WithoutPlaintext)'s request, as the wire gives it. */
export interface GenerateDataKeyPairRequest {
  keyId?: string | undefined;
  keyPairSpec?: string | undefined;
  encryptionContext?: EncryptionContext | undefined;
  grantTokens?: readonly string[] | undefined;
  dryRun?: boolean | undefined;
}
/** The pair: PKCS#8 private key (plaintext and sealed under the KMS key) and DER SPKI public key. */
export interface GenerateDataKeyPairResult {
  privateKeyCiphertextBlob: Buffer;
  privateKeyPlaintext: Buffer;
  publicKey: Buffer;
  keyId: string;
  keyPairSpec: DataKeyPairSpec;
}

/**
 * GenerateDataKeyPair: the device generates the pair; the private key (PKCS#8 DER) is sealed under the
 * named symmetric KMS key, so Decrypt with that key returns it; the public key is DER SPKI.
 */
export async function generateDataKeyPair(
  deps: ServiceDeps,
  req: GenerateDataKeyPairRequest,
  operation = "GenerateDataKeyPair",
): Promise<GenerateDataKeyPairResult> {
  const keyId = parseKeyId(deps.partition, req.keyId, "KeyId", { aliases: true });
  const spec = optionalEnum("KeyPairSpec", req.keyPairSpec, DATA_KEY_PAIR_SPECS);
  if (!spec) throw validation("KeyPairSpec is required.");
  const context = req.encryptionContext ?? {};
  validateEncryptionContext(context);
  validateGrantTokens(req.grantTokens);
  const key = await authorizedKey(deps, keyId, operation, { encryptionContext: context, grantTokens: req.grantTokens });
  checkUsable(deps, key, "ENCRYPT_DECRYPT", "GenerateDataKeyPair");
  assertAlgorithm(key, "SYMMETRIC_DEFAULT"); // the private key is sealed with a symmetric KMS key only
  const store = storeOf(deps, key);
  if (!isAsymmetricSpec(spec) || !store.capabilities.keySpecs.includes(spec)) {
    throw new KmsError("UnsupportedOperationException", `KeyPairSpec ${spec} is not supported by this key store.`);
  }
  dryRunStop(req);
  const pair = await store.generateDataKeyPair(spec);
  try {
    const privateKeyCiphertextBlob = await seal(deps, key, pair.privateKey, context);
    return { privateKeyCiphertextBlob, privateKeyPlaintext: pair.privateKey, publicKey: pair.publicKey, keyId: keyArn(deps.partition, key.keyId), keyPairSpec: spec };
  } catch (err) {
    pair.privateKey.fill(0);
    throw err;
  }
}

/** GenerateDataKeyPairWithoutPlaintext: as above; the plaintext private key is wiped, never returned. */
export async function generateDataKeyPairWithoutPlaintext(
  deps: ServiceDeps,
  req: GenerateDataKeyPairRequest,
): Promise<Omit<GenerateDataKeyPairResult, "privateKeyPlaintext">> {
  const { privateKeyPlaintext, ...rest } = await generateDataKeyPair(deps, req, "GenerateDataKeyPairWithoutPlaintext");
  privateKeyPlaintext.fill(0);
  return rest;
}
