import { type ServiceDeps, authorizedKey } from "./deps.js";
import { KmsError } from "./errors.js";
import { keyArn, parseKeyId } from "./key-ids.js";
import { assertStateAllows } from "./key-states.js";
import type { KeyRecord, KeyState } from "./types.js";
import { optionalInt } from "./validate.js";

/** AWS: PendingWindowInDays is 7–30, default 30. */
export const MIN_PENDING_WINDOW_DAYS = 7;
export const MAX_PENDING_WINDOW_DAYS = 30;
const DAY_MS = 86_400_000;

interface KeyIdRequest {
  keyId?: string | undefined;
}

/** EnableKey: Disabled → Enabled (Enabled stays Enabled). */
export async function enableKey(deps: ServiceDeps, req: KeyIdRequest): Promise<void> {
  const key = await managedKey(deps, req.keyId, "EnableKey");
  await transition(deps, key, "Enabled");
}

/** DisableKey: Enabled → Disabled; cryptographic operations then answer DisabledException. */
export async function disableKey(deps: ServiceDeps, req: KeyIdRequest): Promise<void> {
  const key = await managedKey(deps, req.keyId, "DisableKey");
  await transition(deps, key, "Disabled");
}

export interface ScheduleKeyDeletionResult {
  keyId: string;
  deletionDate: Date;
  keyState: "PendingDeletion";
  pendingWindowInDays: number;
}

/**
 * ScheduleKeyDeletion: the key turns PendingDeletion at once (unusable), and the deletion reaper destroys
 * its material when `DeletionDate` has passed. The deadline is stored with the state, in one write.
 */
export async function scheduleKeyDeletion(
  deps: ServiceDeps,
  req: KeyIdRequest & { pendingWindowInDays?: number | undefined },
): Promise<ScheduleKeyDeletionResult> {
  const keyId = parseKeyId(deps.partition, req.keyId);
  const days = optionalInt("PendingWindowInDays", req.pendingWindowInDays, MIN_PENDING_WINDOW_DAYS, MAX_PENDING_WINDOW_DAYS) ?? 30;
  const key = await authorizedKey(deps, keyId, "ScheduleKeyDeletion");
  assertStateAllows(key, "ScheduleKeyDeletion");
  const deletionDate = new Date(deps.clock.now().getTime() + days * DAY_MS);
  await transition(deps, key, "PendingDeletion", deletionDate);
  return { keyId: keyArn(deps.partition, key.keyId), deletionDate, keyState: "PendingDeletion", pendingWindowInDays: days };
}

/** CancelKeyDeletion: PendingDeletion → Disabled (as AWS: the key must be enabled again explicitly). */
export async function cancelKeyDeletion(deps: ServiceDeps, req: KeyIdRequest): Promise<{ keyId: string }> {
  const key = await managedKey(deps, req.keyId, "CancelKeyDeletion");
  await transition(deps, key, "Disabled");
  return { keyId: keyArn(deps.partition, key.keyId) };
}

/** Loads a key by key id or key ARN (management operations take no aliases) and applies the state rules. */
export async function managedKey(
  deps: ServiceDeps,
  keyIdInput: string | undefined,
  operation: Parameters<typeof assertStateAllows>[1],
): Promise<KeyRecord> {
  // Authorized before the state rules: a caller without permission learns nothing about the key's state.
  const key = await authorizedKey(deps, parseKeyId(deps.partition, keyIdInput), operation);
  assertStateAllows(key, operation);
  return key;
}

/**
 * A compare-and-set from the state this request saw. When another request changed the key in between,
 * the change is refused rather than applied over it (the client sees the state conflict, as with AWS).
 */
async function transition(deps: ServiceDeps, key: KeyRecord, to: KeyState, deletionDate?: Date): Promise<void> {
  const from = key.storedState ?? key.keyState;
  if (from === to && to !== "PendingDeletion") return;
  if (!(await deps.metadata.transitionKey(key.keyId, from, to, deletionDate))) {
    throw new KmsError("KMSInvalidStateException", `Key ${key.keyId} changed state concurrently; retry the request.`);
  }
}
