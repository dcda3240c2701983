import { atLeastAsStrict, CONSTRAINABLE_OPERATIONS, GRANT_OPERATIONS, type GrantConstraints, type GrantOperation, type GrantRecord, MAX_GRANTS_PER_GRANTEE_PER_KEY, MAX_GRANTS_PER_KEY, newGrantCredentials, parseGrantToken, tokenMatches } from "./authz/grants.js";
import { accountOf } from "./caller.js";
import { type ServiceDeps, requestAccess, authorizeAccount, authorizeKey, loadKey } from "./deps.js";
import { validateEncryptionContext } from "./encryption-context.js";
import { KmsError, validation } from "./errors.js";
import { keyArn, parseKeyId } from "./key-ids.js";
import { assertStateAllows } from "./key-states.js";
import { decodeMarker, page } from "./markers.js";
import { administratorOf } from "./policy-operations.js";
import type { EncryptionContext, KeyRecord } from "./types.js";
import { dryRunStop, optionalInt, requireString, validateGrantTokens } from "./validate.js";

const PRINCIPAL = /^[\w+=,.@:/-]+$/;
const GRANT_NAME = /^[a-zA-Z0-9:/_-]+$/;
const GRANT_ID = /^[0-9a-f]{64}$/;
/** AWS: each constraint holds at most 8 pairs, values at most 384 characters. */
const MAX_CONSTRAINT_PAIRS = 8;

export interface CreateGrantRequest {
  keyId?: string | undefined;
  granteePrincipal?: string | undefined;
  retiringPrincipal?: string | undefined;
  operations?: readonly string[] | undefined;
  constraints?: GrantConstraints | undefined;
  grantTokens?: readonly string[] | undefined;
  name?: string | undefined;
  dryRun?: boolean | undefined;
}

/** What a grant can allow on a key of each kind (AWS refuses the others with ValidationException). */
function operationsFor(key: KeyRecord): readonly GrantOperation[] {
  const common: GrantOperation[] = ["CreateGrant", "DescribeKey", "RetireGrant"];
  if (key.keyUsage === "SIGN_VERIFY") return [...common, "Sign", "Verify", "GetPublicKey"];
  if (key.keyUsage === "GENERATE_VERIFY_MAC") return [...common, "GenerateMac", "VerifyMac"];
  if (key.keySpec !== "SYMMETRIC_DEFAULT") return [...common, "Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"];
  return [
    ...common,
    "Encrypt",
    "Decrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
  ];
}

function principal(field: string, v: string | undefined, required: boolean): string | undefined {
  if (!required && (v === undefined || v === "")) return undefined;
  const p = requireString(field, v, 1, 256);
  if (!PRINCIPAL.test(p)) throw validation(`${field} '${p}' is not a valid principal.`);
  return p;
}

function constraintMap(field: string, ctx: EncryptionContext | undefined): EncryptionContext | undefined {
  if (ctx === undefined) return undefined;
  const entries = Object.entries(ctx);
  if (entries.length === 0) return undefined;
  if (entries.length > MAX_CONSTRAINT_PAIRS) throw validation(`${field} can hold at most ${MAX_CONSTRAINT_PAIRS} pairs.`);
  for (const [, v] of entries) if (typeof v === "string" && v.length > 384) throw validation(`${field} values must be at most 384 characters.`);
  validateEncryptionContext(ctx);
  return { ...ctx };
}

function validConstraints(c: GrantConstraints | undefined): GrantConstraints | undefined {
  if (!c) return undefined;
  const subset = constraintMap("EncryptionContextSubset", c.encryptionContextSubset);
  const equals = constraintMap("EncryptionContextEquals", c.encryptionContextEquals);
  if (!subset && !equals) return undefined;
  return { ...(subset ? { encryptionContextSubset: subset } : {}), ...(equals ? { encryptionContextEquals: equals } : {}) };
}

/**
 * CreateGrant. Allowed by the key policy (kms:CreateGrant, with the kms:GranteePrincipal, kms:GrantOperations
 * ... condition keys), or by a grant of the caller that includes CreateGrant — then the new grant may only
 * hold operations of that grant, with constraints at least as strict (as AWS).
 */
export async function createGrant(deps: ServiceDeps, req: CreateGrantRequest): Promise<{ grantId: string; grantToken: string }> {
  const keyId = parseKeyId(deps.partition, req.keyId);
  const grantee = principal("GranteePrincipal", req.granteePrincipal, true)!;
  const retiring = principal("RetiringPrincipal", req.retiringPrincipal, false);
  if (!req.operations || req.operations.length === 0) throw validation("Operations is required and must not be empty.");
  const operations = [...new Set(req.operations)];
  for (const op of operations) {
    if (!(GRANT_OPERATIONS as readonly string[]).includes(op)) throw validation(`Operations member '${op}' is not one of: ${GRANT_OPERATIONS.join(", ")}.`);
  }
  const name = req.name === undefined || req.name === "" ? undefined : requireString("Name", req.name, 1, 256);
  if (name !== undefined && !GRANT_NAME.test(name)) throw validation("Name may contain only letters, digits, ':', '/', '_' and '-'.");
  const constraints = validConstraints(req.constraints);
  validateGrantTokens(req.grantTokens);
  if (constraints && !operations.every((o) => (CONSTRAINABLE_OPERATIONS as readonly string[]).includes(o))) {
    throw validation("Encryption context constraints are supported only on grants whose operations take an encryption context (and DescribeKey, RetireGrant, CreateGrant).");
  }

  const key = await loadKey(deps, keyId);
  const extraKeys = new Map<string, string[]>([
    ["kms:granteeprincipal", [grantee]],
    ["kms:grantoperations", operations],
  ]);
  if (retiring) extraKeys.set("kms:retiringprincipal", [retiring]);
  if (constraints) extraKeys.set("kms:grantconstrainttype", Object.keys(constraints).map((k) => (k === "encryptionContextEquals" ? "EncryptionContextEquals" : "EncryptionContextSubset")));
  const outcome = await authorizeKey(deps, key, "CreateGrant", { grantTokens: req.grantTokens, extraKeys });
  if (outcome.grant) {
    const parent = outcome.grant;
    if (!operations.every((o) => (parent.operations as readonly string[]).includes(o)) || !atLeastAsStrict(parent.constraints, constraints)) {
      throw new KmsError("AccessDeniedException", `User: ${requestAccess(deps).caller.principal} is not authorized to create a grant wider than grant ${parent.grantId}.`);
    }
  }
  assertStateAllows(key, "CreateGrant");
  const allowed = operationsFor(key);
  const bad = operations.filter((o) => !(allowed as readonly string[]).includes(o));
  if (bad.length > 0) throw validation(`Operations ${bad.join(", ")} are not valid for key ${key.keyId} (KeySpec ${key.keySpec}, KeyUsage ${key.keyUsage}).`);
  if (constraints && key.keySpec !== "SYMMETRIC_DEFAULT") {
    throw validation("Encryption context constraints are supported only on symmetric encryption KMS keys.");
  }
  dryRunStop(req);

  const { grantId, token, tokenHash } = newGrantCredentials();
  const grant: GrantRecord = {
    grantId,
    keyId: key.keyId,
    name,
    granteePrincipal: grantee,
    retiringPrincipal: retiring,
    issuingAccount: `arn:aws:iam::${accountOf(requestAccess(deps).caller.principal) ?? deps.partition.accountId}:root`,
    operations: operations as GrantOperation[],
    constraints,
    creationDate: deps.clock.now(),
    tokenHash,
  };
  if ((await deps.metadata.insertGrant(grant, MAX_GRANTS_PER_KEY, MAX_GRANTS_PER_GRANTEE_PER_KEY)) === "limit") {
    throw new KmsError(
      "LimitExceededException",
      `Key ${key.keyId} has reached the grant limit (${MAX_GRANTS_PER_KEY} grants, ${MAX_GRANTS_PER_GRANTEE_PER_KEY} per grantee principal).`,
    );
  }
  return { grantId, grantToken: token };
}

/** A grant as ListGrants and ListRetirableGrants show it. */
export interface GrantListEntry {
  keyId: string;
  grantId: string;
  name: string | undefined;
  creationDate: Date;
  granteePrincipal: string;
  retiringPrincipal: string | undefined;
  issuingAccount: string;
  operations: readonly string[];
  constraints: GrantConstraints | undefined;
}

function entry(deps: ServiceDeps, g: GrantRecord): GrantListEntry {
  return {
    keyId: keyArn(deps.partition, g.keyId),
    grantId: g.grantId,
    name: g.name,
    creationDate: g.creationDate,
    granteePrincipal: g.granteePrincipal,
    retiringPrincipal: g.retiringPrincipal,
    issuingAccount: g.issuingAccount,
    operations: g.operations,
    constraints: g.constraints,
  };
}

type GrantPage = { grants: GrantListEntry[]; truncated: boolean; nextMarker?: string | undefined };

/** ListGrants: a key's grants by grant id; Limit 1–100 (default 50); optional GrantId / GranteePrincipal filters. */
export async function listGrants(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; limit?: number | undefined; marker?: string | undefined; grantId?: string | undefined; granteePrincipal?: string | undefined },
): Promise<GrantPage> {
  const limit = optionalInt("Limit", req.limit, 1, 100) ?? 50;
  const after = req.marker ? decodeMarker("g1", req.marker) : undefined;
  const grantId = req.grantId ? grantIdOf(req.grantId) : undefined;
  const grantee = principal("GranteePrincipal", req.granteePrincipal, false);
  const key = await loadKey(deps, parseKeyId(deps.partition, req.keyId));
  await authorizeKey(deps, key, "ListGrants");
  const rows = await deps.metadata.listGrants({ keyId: key.keyId, grantId, granteePrincipal: grantee, afterGrantId: after, limit: limit + 1 });
  const { items, truncated, nextMarker } = page(rows, limit, "g1", (g) => g.grantId);
  return { grants: items.map((g) => entry(deps, g)), truncated, nextMarker };
}

/** ListRetirableGrants: account-level (no key is named), for the administrator and account principals. */
export async function listRetirableGrants(
  deps: ServiceDeps,
  req: { retiringPrincipal?: string | undefined; limit?: number | undefined; marker?: string | undefined },
): Promise<GrantPage> {
  const limit = optionalInt("Limit", req.limit, 1, 100) ?? 50;
  const after = req.marker ? decodeMarker("r1", req.marker) : undefined;
  const retiring = principal("RetiringPrincipal", req.retiringPrincipal, true)!;
  authorizeAccount(deps, "ListRetirableGrants");
  const rows = await deps.metadata.listRetirableGrants({ retiringPrincipal: retiring, afterGrantId: after, limit: limit + 1 });
  const { items, truncated, nextMarker } = page(rows, limit, "r1", (g) => g.grantId);
  return { grants: items.map((g) => entry(deps, g)), truncated, nextMarker };
}

function grantIdOf(v: string): string {
  const id = requireString("GrantId", v, 1, 128);
  if (!GRANT_ID.test(id)) throw new KmsError("InvalidGrantIdException", `GrantId '${id}' is not a valid grant id.`);
  return id;
}

/** The grant named by KeyId + GrantId on an existing key; NotFoundException when the key has no such grant. */
async function namedGrant(deps: ServiceDeps, keyIdInput: string | undefined, grantIdInput: string | undefined): Promise<{ key: KeyRecord; grant: GrantRecord }> {
  const keyId = parseKeyId(deps.partition, keyIdInput);
  const grantId = grantIdOf(requireString("GrantId", grantIdInput, 1, 128));
  const key = await loadKey(deps, keyId);
  const grant = await deps.metadata.getGrant(grantId);
  if (!grant || grant.keyId !== key.keyId) throw new KmsError("NotFoundException", `Grant ${grantId} does not exist on key ${key.keyId}.`);
  return { key, grant };
}

/**
 * RetireGrant, by GrantToken or by KeyId + GrantId. Allowed to the grant's retiring principal, to its grantee
 * when the grant includes RetireGrant, to the administrator (the account that issued it), or by the key policy
 * (kms:RetireGrant).
 */
export async function retireGrant(
  deps: ServiceDeps,
  req: { grantToken?: string | undefined; keyId?: string | undefined; grantId?: string | undefined; dryRun?: boolean | undefined },
): Promise<void> {
  let key: KeyRecord;
  let grant: GrantRecord;
  if (req.grantToken) {
    const { grantId, secretHash } = parseGrantToken(requireString("GrantToken", req.grantToken, 1, 8192));
    const found = await deps.metadata.getGrant(grantId);
    if (!found || !tokenMatches(found, secretHash)) throw new KmsError("InvalidGrantTokenException", "The grant token is not valid.");
    if (req.grantId && req.grantId !== found.grantId) throw validation("GrantId does not match the grant of GrantToken.");
    key = await loadKey(deps, found.keyId);
    if (req.keyId && parseKeyId(deps.partition, req.keyId) !== key.keyId) throw validation("KeyId does not match the key of GrantToken.");
    grant = found;
  } else {
    if (!req.keyId || !req.grantId) throw validation("Specify GrantToken, or both KeyId and GrantId.");
    ({ key, grant } = await namedGrant(deps, req.keyId, req.grantId));
  }
  const caller = deps.caller;
  const byGrant =
    caller !== undefined &&
    (caller.authMethod === "internal" ||
      caller.principal === grant.retiringPrincipal ||
      (caller.principal === grant.granteePrincipal && grant.operations.includes("RetireGrant")) ||
      caller.principal === administratorOf(deps));
  if (!byGrant) await authorizeKey(deps, key, "RetireGrant");
  dryRunStop(req);
  await deps.metadata.deleteGrant(grant.grantId);
}

/** RevokeGrant: needs kms:RevokeGrant in the key policy. */
export async function revokeGrant(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; grantId?: string | undefined; dryRun?: boolean | undefined },
): Promise<void> {
  const keyId = parseKeyId(deps.partition, req.keyId);
  grantIdOf(requireString("GrantId", req.grantId, 1, 128));
  await authorizeKey(deps, await loadKey(deps, keyId), "RevokeGrant"); // before the grant is looked up: no existence leak
  const { grant } = await namedGrant(deps, req.keyId, req.grantId);
  dryRunStop(req);
  await deps.metadata.deleteGrant(grant.grantId);
}
