import { type ServiceDeps, authorizeAccount, authorizeKey, authorizedKey, loadKey } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import { aliasArn, parseKeyId } from "./key-ids.js";
import { assertStateAllows } from "./key-states.js";
import { decodeMarker, page } from "./markers.js";
import { isAsymmetricSpec, isHmacSpec, type KeyRecord } from "./types.js";
import { optionalInt, requireString } from "./validate.js";

/** AWS resource quota: aliases per KMS key. */
export const MAX_ALIASES_PER_KEY = 50;
const NAME_CHARS = /^[a-zA-Z0-9:/_-]+$/; // the API's pattern; ':' passes it but no alias may contain one
const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]+$/;

/** An alias as ListAliases returns it. */
export interface AliasListEntry {
  aliasName: string;
  aliasArn: string;
  targetKeyId: string;
  creationDate: Date;
  lastUpdatedDate: Date;
}

/**
 * Checks an AliasName: 1–256 characters of the API's pattern (else ValidationException), then AWS's naming
 * rules — `alias/` followed by letters, digits, '/', '_' or '-', and not the reserved `alias/aws/` — else
 * InvalidAliasNameException.
 */
export function validateAliasName(input: string | undefined): string {
  const name = requireString("AliasName", input, 1, 256);
  if (!NAME_CHARS.test(name)) throw validation("AliasName may contain only letters, digits, '/', '_' and '-'.");
  if (!ALIAS_NAME.test(name)) {
    throw new KmsError("InvalidAliasNameException", `Alias name '${name}' must begin with 'alias/' followed by a name.`);
  }
  if (name.toLowerCase().startsWith("alias/aws/")) {
    throw new KmsError("InvalidAliasNameException", "Alias names beginning with 'alias/aws/' are reserved for AWS managed keys.");
  }
  return name;
}

/** CreateAlias: a new name for a key (key id or key ARN); AlreadyExistsException when the name is taken. */
export async function createAlias(deps: ServiceDeps, req: { aliasName?: string | undefined; targetKeyId?: string | undefined }): Promise<void> {
  const aliasName = validateAliasName(req.aliasName);
  const key = await authorizedKey(deps, parseKeyId(deps.partition, req.targetKeyId, "TargetKeyId"), "CreateAlias");
  assertStateAllows(key, "CreateAlias");
  const now = deps.clock.now();
  const outcome = await deps.metadata.insertAlias({ aliasName, targetKeyId: key.keyId, creationDate: now, lastUpdatedDate: now }, MAX_ALIASES_PER_KEY);
  if (outcome === "exists") throw new KmsError("AlreadyExistsException", `An alias with the name ${aliasArn(deps.partition, aliasName)} already exists.`);
  if (outcome === "limit") throw new KmsError("LimitExceededException", `Key ${key.keyId} already has ${MAX_ALIASES_PER_KEY} aliases.`);
}

/**
 * UpdateAlias: points an existing alias at another key — how keys are rotated manually without changing
 * clients. As AWS requires, both keys must be of the same type (symmetric, asymmetric, HMAC) and usage.
 */
export async function updateAlias(deps: ServiceDeps, req: { aliasName?: string | undefined; targetKeyId?: string | undefined }): Promise<void> {
  const aliasName = requireString("AliasName", req.aliasName, 1, 256);
  if (!NAME_CHARS.test(aliasName)) throw validation("AliasName may contain only letters, digits, '/', '_' and '-'.");
  const key = await authorizedKey(deps, parseKeyId(deps.partition, req.targetKeyId, "TargetKeyId"), "UpdateAlias");
  assertStateAllows(key, "UpdateAlias");
  const current = await deps.metadata.getAlias(aliasName);
  if (!current) throw new KmsError("NotFoundException", `Alias ${aliasArn(deps.partition, aliasName)} is not found.`);
  const previous = await deps.metadata.getKey(current.targetKeyId);
  // As AWS: kms:UpdateAlias is needed on the key the alias points at now as well as on the new target.
  if (previous) await authorizeKey(deps, previous, "UpdateAlias");
  if (previous && (keyType(previous) !== keyType(key) || previous.keyUsage !== key.keyUsage)) {
    throw validation(
      `Alias ${aliasName} points at a ${keyType(previous)} ${previous.keyUsage} key; the new target must be the same type and usage.`,
    );
  }
  const outcome = await deps.metadata.retargetAlias(aliasName, key.keyId, deps.clock.now(), MAX_ALIASES_PER_KEY);
  if (outcome === "missing") throw new KmsError("NotFoundException", `Alias ${aliasArn(deps.partition, aliasName)} is not found.`);
  if (outcome === "limit") throw new KmsError("LimitExceededException", `Key ${key.keyId} already has ${MAX_ALIASES_PER_KEY} aliases.`);
}

/** DeleteAlias: removes the name; the key is not affected. */
export async function deleteAlias(deps: ServiceDeps, req: { aliasName?: string | undefined }): Promise<void> {
  const aliasName = requireString("AliasName", req.aliasName, 1, 256);
  if (!NAME_CHARS.test(aliasName)) throw validation("AliasName may contain only letters, digits, '/', '_' and '-'.");
  const alias = await deps.metadata.getAlias(aliasName);
  const target = alias ? await deps.metadata.getKey(alias.targetKeyId) : undefined;
  if (target) await authorizeKey(deps, target, "DeleteAlias");
  if (!(await deps.metadata.deleteAlias(aliasName))) {
    throw new KmsError("NotFoundException", `Alias ${aliasArn(deps.partition, aliasName)} is not found.`);
  }
}

/** ListAliases: ordered by name, Limit 1–100 (default 50), optionally only the aliases of one key. */
export async function listAliases(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; limit?: number | undefined; marker?: string | undefined },
): Promise<{ aliases: AliasListEntry[]; truncated: boolean; nextMarker?: string | undefined }> {
  const limit = optionalInt("Limit", req.limit, 1, 100) ?? 50;
  authorizeAccount(deps, "ListAliases");
  const keyId = req.keyId ? (await loadKey(deps, parseKeyId(deps.partition, req.keyId))).keyId : undefined;
  const after = req.marker ? decodeMarker("a1", req.marker) : undefined;
  const rows = await deps.metadata.listAliases({ keyId, afterName: after, limit: limit + 1 });
  const { items, truncated, nextMarker } = page(rows, limit, "a1", (a) => a.aliasName);
  return {
    aliases: items.map((a) => ({ ...a, aliasArn: aliasArn(deps.partition, a.aliasName) })),
    truncated,
    nextMarker,
  };
}

function keyType(k: KeyRecord): string {
  return isAsymmetricSpec(k.keySpec) ? "asymmetric" : isHmacSpec(k.keySpec) ? "HMAC" : "symmetric";
}
