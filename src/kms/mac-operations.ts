import { noteBackingKey } from "./audit-scope.js";
import { type ServiceDeps, authorizedKey, checkUsable, storeOf } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import { keyArn, parseKeyId } from "./key-ids.js";
import { assertMacAlgorithm } from "./rules.js";
import { MAC_ALGORITHMS, type KeyRecord, type MacAlgorithm } from "./types.js";
import { dryRunStop, optionalEnum, requireBytes, validateGrantTokens } from "./validate.js";

/** AWS limits: Message 1–4096 bytes; Mac 1–6144 bytes. */
export const MAX_MAC_MESSAGE = 4096;
export const MAX_MAC = 6144;

/** GenerateMac's request, as the wire gives it. */
export interface GenerateMacRequest {
  keyId?: string | undefined;
  message?: Uint8Array | undefined;
  macAlgorithm?: string | undefined;
  grantTokens?: readonly string[] | undefined;
  dryRun?: boolean | undefined;
}
/** VerifyMac's request: GenerateMac's fields plus the MAC to check. */
export interface VerifyMacRequest extends GenerateMacRequest {
  mac?: Uint8Array | undefined;
}

/** GenerateMac: HMAC on the device with the key's one MAC algorithm. */
export async function generateMac(
  deps: ServiceDeps,
  req: GenerateMacRequest,
): Promise<{ mac: Buffer; macAlgorithm: MacAlgorithm; keyId: string }> {
  const { key, algorithm, message } = await prepare(deps, req, "GenerateMac");
  dryRunStop(req);
  const mac = await storeOf(deps, key).generateMac(ref(deps, key), algorithm, message);
  return { mac, macAlgorithm: algorithm, keyId: keyArn(deps.partition, key.keyId) };
}

/** The device compares the MAC; a mismatch is KMSInvalidMacException, as AWS (never MacValid=false). */
export async function verifyMac(
  deps: ServiceDeps,
  req: VerifyMacRequest,
): Promise<{ keyId: string; macValid: true; macAlgorithm: MacAlgorithm }> {
  const mac = requireBytes("Mac", req.mac, 1, MAX_MAC);
  const { key, algorithm, message } = await prepare(deps, req, "VerifyMac");
  dryRunStop(req);
  if (!(await storeOf(deps, key).verifyMac(ref(deps, key), algorithm, message, mac))) {
    throw new KmsError("KMSInvalidMacException", "The MAC verification failed.");
  }
  return { keyId: keyArn(deps.partition, key.keyId), macValid: true, macAlgorithm: algorithm };
}

async function prepare(
  deps: ServiceDeps,
  req: GenerateMacRequest,
  operation: string,
): Promise<{ key: KeyRecord; algorithm: MacAlgorithm; message: Buffer }> {
  const keyId = parseKeyId(deps.partition, req.keyId, "KeyId", { aliases: true });
  const message = requireBytes("Message", req.message, 1, MAX_MAC_MESSAGE);
  const algorithm = optionalEnum("MacAlgorithm", req.macAlgorithm, MAC_ALGORITHMS);
  if (!algorithm) throw validation("MacAlgorithm is required.");
  validateGrantTokens(req.grantTokens);
  const key = await authorizedKey(deps, keyId, operation, { grantTokens: req.grantTokens, algorithm: { kind: "MacAlgorithm", value: algorithm } });
  checkUsable(deps, key, "GENERATE_VERIFY_MAC", operation);
  assertMacAlgorithm(key, algorithm);
  return { key, algorithm, message };
}

function ref(deps: ServiceDeps, key: KeyRecord) {
  return noteBackingKey(deps.audit, { keyId: key.keyId, version: key.currentVersion });
}
