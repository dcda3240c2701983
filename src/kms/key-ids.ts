import { isUuid } from "./ciphertext.js";
import { KmsError } from "./errors.js";
import { requireString } from "./validate.js";

/** The account and region that ARNs are minted in (from configuration). */
export interface Partition {
  readonly region: string;
  readonly accountId: string;
}

export function keyArn(p: Partition, keyId: string): string {
  return `arn:aws:kms:${p.region}:${p.accountId}:key/${keyId}`;
}

/**
 * Turns a KeyId parameter (key id or key ARN) into a key id. Like AWS, an identifier that names no key in
 * this account and region — malformed, foreign, or an alias before aliases exist — is NotFoundException.
 */
export function parseKeyId(p: Partition, input: string | undefined, field = "KeyId"): string {
  const raw = requireString(field, input, 1, 2048);
  if (isUuid(raw)) return raw;
  const prefix = `arn:aws:kms:${p.region}:${p.accountId}:key/`;
  if (raw.startsWith(prefix) && isUuid(raw.slice(prefix.length))) return raw.slice(prefix.length);
  if (raw.startsWith("alias/") || /^arn:aws:kms:[^:]*:[^:]*:alias\//.test(raw)) {
    throw new KmsError("NotFoundException", `Alias ${raw} is not found.`);
  }
  throw new KmsError("NotFoundException", `Invalid keyId '${raw}'.`);
}
