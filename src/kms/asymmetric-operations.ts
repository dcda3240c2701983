import { noteBackingKey } from "./audit-scope.js";
import { createHash } from "node:crypto";
import { type ServiceDeps, authorizedKey, checkUsable, storeOf } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import { keyArn, parseKeyId } from "./key-ids.js";
import { assertSigningAlgorithm, encryptionAlgorithmsFor, signingAlgorithmsFor } from "./rules.js";
import {
  MESSAGE_TYPES,
  SIGNING_ALGORITHMS,
  isAsymmetricSpec,
  type EncryptionAlgorithm,
  type KeyRecord,
  type KeySpec,
  type KeyUsage,
  type MessageType,
  type SigningAlgorithm,
} from "./types.js";
import { dryRunStop, optionalEnum, requireBytes, validateGrantTokens } from "./validate.js";

/** AWS limits: Message 1–4096 bytes, Signature 1–6144 bytes. */
export const MAX_MESSAGE = 4096;
export const MAX_SIGNATURE = 6144;

/** GetPublicKey's answer: the key (as ARN), its DER SPKI, and what it may be used for. */
export interface GetPublicKeyResult {
  keyId: string;
  publicKey: Buffer;
  keySpec: KeySpec;
  keyUsage: KeyUsage;
  encryptionAlgorithms: EncryptionAlgorithm[];
  signingAlgorithms: SigningAlgorithm[];
}

/** GetPublicKey: DER SubjectPublicKeyInfo (RFC 5280) of an asymmetric key, with what it is for. */
export async function getPublicKey(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; grantTokens?: readonly string[] | undefined },
): Promise<GetPublicKeyResult> {
  const keyId = parseKeyId(deps.partition, req.keyId, "KeyId", { aliases: true });
  validateGrantTokens(req.grantTokens);
  const key = await authorizedKey(deps, keyId, "GetPublicKey", { grantTokens: req.grantTokens });
  checkUsable(deps, key, undefined, "GetPublicKey");
  if (!isAsymmetricSpec(key.keySpec)) {
    throw new KmsError("UnsupportedOperationException", `Key ${key.keyId} (${key.keySpec}) has no public key.`);
  }
  return {
    keyId: keyArn(deps.partition, key.keyId),
    publicKey: await storeOf(deps, key).getPublicKey(ref(deps, key)),
    keySpec: key.keySpec,
    keyUsage: key.keyUsage,
    encryptionAlgorithms: encryptionAlgorithmsFor(key.keySpec, key.keyUsage),
    signingAlgorithms: signingAlgorithmsFor(key.keySpec, key.keyUsage),
  };
}

interface SignCommon {
  keyId?: string | undefined;
  message?: Uint8Array | undefined;
  messageType?: string | undefined;
  signingAlgorithm?: string | undefined;
  grantTokens?: readonly string[] | undefined;
  dryRun?: boolean | undefined;
}
/** Sign's request, as the wire gives it (strings are validated here, "" counts as absent). */
export type SignRequest = SignCommon;
/** Verify's request: Sign's fields plus the signature to check. */
export interface VerifyRequest extends SignCommon {
  signature?: Uint8Array | undefined;
}

/** Sign: the private key signs on the device; ECDSA signatures come back DER-encoded, as AWS returns them. */
export async function sign(
  deps: ServiceDeps,
  req: SignRequest,
): Promise<{ keyId: string; signature: Buffer; signingAlgorithm: SigningAlgorithm }> {
  const { key, algorithm, input } = await prepare(deps, req, "Sign");
  dryRunStop(req);
  const signature = await storeOf(deps, key).sign(ref(deps, key), algorithm, input);
  return { keyId: keyArn(deps.partition, key.keyId), signature, signingAlgorithm: algorithm };
}

/** Verify runs on the device; a signature that does not verify is KMSInvalidSignatureException, as AWS. */
export async function verify(
  deps: ServiceDeps,
  req: VerifyRequest,
): Promise<{ keyId: string; signatureValid: true; signingAlgorithm: SigningAlgorithm }> {
  const signature = requireBytes("Signature", req.signature, 1, MAX_SIGNATURE);
  const { key, algorithm, input } = await prepare(deps, req, "Verify");
  dryRunStop(req);
  if (!(await storeOf(deps, key).verify(ref(deps, key), algorithm, input, signature))) {
    throw new KmsError("KMSInvalidSignatureException", "The signature verification failed.");
  }
  return { keyId: keyArn(deps.partition, key.keyId), signatureValid: true, signingAlgorithm: algorithm };
}

/** Shared Sign/Verify checks, then what the device signs: the digest, or the message for Ed25519. */
async function prepare(
  deps: ServiceDeps,
  req: SignCommon,
  operation: "Sign" | "Verify",
): Promise<{ key: KeyRecord; algorithm: SigningAlgorithm; input: Buffer }> {
  const keyId = parseKeyId(deps.partition, req.keyId, "KeyId", { aliases: true });
  const message = requireBytes("Message", req.message, 1, MAX_MESSAGE);
  const messageType = optionalEnum("MessageType", req.messageType, MESSAGE_TYPES) ?? "RAW";
  const algorithm = optionalEnum("SigningAlgorithm", req.signingAlgorithm, SIGNING_ALGORITHMS);
  if (!algorithm) throw validation("SigningAlgorithm is required.");
  validateGrantTokens(req.grantTokens);
  const key = await authorizedKey(deps, keyId, operation, { grantTokens: req.grantTokens, algorithm: { kind: "SigningAlgorithm", value: algorithm } });
  checkUsable(deps, key, "SIGN_VERIFY", operation);
  assertSigningAlgorithm(key, algorithm);
  return { key, algorithm, input: signingInput(algorithm, messageType, message) };
}

/**
 * RAW messages are hashed here with the algorithm's hash (the digest is not secret, and SoftHSM2 has no
 * CKM_ECDSA_SHA256); DIGEST messages must already be exactly that long. Ed25519 (pure) signs the message.
 */
export function signingInput(algorithm: SigningAlgorithm, messageType: MessageType, message: Buffer): Buffer {
  if (messageType === "EXTERNAL_MU") throw validation("MessageType EXTERNAL_MU is valid only with ML-DSA keys.");
  if (algorithm === "ED25519_SHA_512") {
    if (messageType !== "RAW") throw validation("ED25519_SHA_512 signs RAW messages only; use MessageType RAW.");
    return message;
  }
  const bits = /_SHA_(256|384|512)$/.exec(algorithm)?.[1];
  if (!bits) throw new KmsError("UnsupportedOperationException", `SigningAlgorithm ${algorithm} is not supported.`);
  if (messageType === "RAW") return createHash(`sha${bits}`).update(message).digest();
  if (message.length !== Number(bits) / 8) {
    throw validation(`A DIGEST message for ${algorithm} must be ${Number(bits) / 8} bytes long; got ${message.length}.`);
  }
  return message;
}

function ref(deps: ServiceDeps, key: KeyRecord) {
  return noteBackingKey(deps.audit, { keyId: key.keyId, version: key.currentVersion });
}
