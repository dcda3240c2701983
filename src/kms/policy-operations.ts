import type { Authorizer } from "./authz/authorizer.js";
import { defaultPolicy, evaluatePolicy, MAX_POLICY_BYTES, type ParsedPolicy, parsePolicy, POLICY_NAME } from "./authz/policy.js";
import type { Caller } from "./caller.js";
import { accountOf } from "./caller.js";
import { type ServiceDeps, requestAccess, authorizeKey, loadKey } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import { keyArn, parseKeyId } from "./key-ids.js";
import { assertStateAllows } from "./key-states.js";
import type { KeyRecord } from "./types.js";
import { optionalInt, requireString } from "./validate.js";

/** The administrator the deps name (the account root when not configured). */
export function administratorOf(deps: ServiceDeps): string {
  return deps.access?.administrator ?? `arn:aws:iam::${deps.partition.accountId}:root`;
}

/**
 * Validates a policy document for a key and applies the lockout safety check: unless bypassed, the policy
 * must let the calling principal call PutKeyPolicy afterwards (AWS's MalformedPolicyDocumentException).
 */
export function checkNewPolicy(
  deps: ServiceDeps,
  { authz, caller }: { authz: Authorizer; caller: Caller },
  keyId: string,
  text: string,
  bypassLockoutCheck: boolean | undefined,
): ParsedPolicy {
  requireString("Policy", text, 1, MAX_POLICY_BYTES);
  const parsed = parsePolicy(text);
  if (!bypassLockoutCheck) {
    const principal = authz.lockoutPrincipal(caller);
    const account = accountOf(principal);
    const decision = evaluatePolicy(parsed, {
      principal,
      action: "kms:PutKeyPolicy",
      resource: keyArn(deps.partition, keyId),
      conditionKeys: new Map([["aws:principalarn", [principal]], ...(account ? [["kms:calleraccount", [account]] as [string, string[]]] : [])]),
    });
    if (decision !== "Allow") {
      throw new KmsError(
        "MalformedPolicyDocumentException",
        `The new key policy will not allow you to update the key policy in the future (${principal} could not call kms:PutKeyPolicy). Set BypassPolicyLockoutSafetyCheck to apply it anyway.`,
      );
    }
  }
  return parsed;
}

function policyName(name: string | undefined): void {
  if (name !== undefined && name !== "" && name !== POLICY_NAME) {
    throw new KmsError("NotFoundException", `PolicyName must be "${POLICY_NAME}"; no policy named '${name}'.`);
  }
}

async function keyFor(deps: ServiceDeps, keyIdInput: string | undefined, operation: string): Promise<KeyRecord> {
  const key = await loadKey(deps, parseKeyId(deps.partition, keyIdInput));
  await authorizeKey(deps, key, operation);
  return key;
}

/** PutKeyPolicy: replaces the key's policy (PolicyName "default" only). */
export async function putKeyPolicy(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; policyName?: string | undefined; policy?: string | undefined; bypassPolicyLockoutSafetyCheck?: boolean | undefined },
): Promise<void> {
  policyName(req.policyName);
  if (req.policy === undefined || req.policy === "") throw validation("Policy is required.");
  const key = await keyFor(deps, req.keyId, "PutKeyPolicy");
  assertStateAllows(key, "PutKeyPolicy");
  const parsed = checkNewPolicy(deps, requestAccess(deps), key.keyId, req.policy, req.bypassPolicyLockoutSafetyCheck);
  await deps.metadata.putKeyPolicy(key.keyId, req.policy);
  requestAccess(deps).authz.remember(key.keyId, parsed);
}

/** GetKeyPolicy: the stored document, or the default one for keys created before policies existed. */
export async function getKeyPolicy(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; policyName?: string | undefined },
): Promise<{ policy: string; policyName: string }> {
  policyName(req.policyName);
  const key = await keyFor(deps, req.keyId, "GetKeyPolicy");
  const policy = (await deps.metadata.getKeyPolicy(key.keyId)) ?? defaultPolicy(administratorOf(deps));
  return { policy, policyName: POLICY_NAME };
}

/** ListKeyPolicies: every key has exactly one policy, "default". */
export async function listKeyPolicies(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; limit?: number | undefined; marker?: string | undefined },
): Promise<{ policyNames: string[]; truncated: boolean; nextMarker?: string | undefined }> {
  optionalInt("Limit", req.limit, 1, 1000);
  if (req.marker) throw new KmsError("InvalidMarkerException", "The Marker is not one this service returned.");
  await keyFor(deps, req.keyId, "ListKeyPolicies");
  return { policyNames: [POLICY_NAME], truncated: false };
}
