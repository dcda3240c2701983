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

/** The ARN of an alias (`alias/name` → `arn:aws:kms:<region>:<account>:alias/name`). */
export function aliasArn(p: Partition, aliasName: string): string {
  return `arn:aws:kms:${p.region}:${p.accountId}:${aliasName}`;
}

/** True for what {@link parseKeyId} returns for an alias (key ids are UUIDs, so the two never collide). */
export function isAliasName(id: string): boolean {
  return id.startsWith("alias/");
}

/**
 * Turns a KeyId parameter into a key id, or — only when `opts.aliases` is set, for the operations where AWS
 * accepts them — into an alias name (`alias/...`, also from an alias ARN) that the caller resolves.
 * Like AWS, an identifier that names nothing in this account and region — malformed, foreign, or an alias
 * where the operation takes none — is NotFoundException.
 */
export function parseKeyId(p: Partition, input: string | undefined, field = "KeyId", opts: { aliases?: boolean } = {}): string {
  const raw = requireString(field, input, 1, 2048);
  if (isUuid(raw)) return raw;
  const prefix = `arn:aws:kms:${p.region}:${p.accountId}:`;
  if (raw.startsWith(`${prefix}key/`) && isUuid(raw.slice(prefix.length + 4))) return raw.slice(prefix.length + 4);
  const alias = raw.startsWith("alias/") ? raw : raw.startsWith(`${prefix}alias/`) ? raw.slice(prefix.length) : undefined;
  if (alias !== undefined && opts.aliases) return alias;
  if (alias !== undefined || /^arn:aws:kms:[^:]*:[^:]*:alias\//.test(raw)) {
    throw new KmsError(
      "NotFoundException",
      opts.aliases ? `Alias ${raw} is not found.` : `Invalid keyId '${raw}': ${field} takes a key id or key ARN here, not an alias.`,
    );
  }
  throw new KmsError("NotFoundException", `Invalid keyId '${raw}'.`);
}
