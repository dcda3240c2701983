import { type ServiceDeps, authorizedKey } from "./deps.js";
import { KmsError } from "./errors.js";
import { keyArn, parseKeyId } from "./key-ids.js";
import { assertStateAllows } from "./key-states.js";
import { decodeMarker, page } from "./markers.js";
import { assertRotatable, rotateKey } from "./rotation.js";
import { managedKey } from "./state-operations.js";
import type { RotationType } from "./types.js";
import { optionalInt } from "./validate.js";

/** AWS limits: RotationPeriodInDays 90–2560 (default 365); at most 25 on-demand rotations per key. */
export const MIN_ROTATION_PERIOD_DAYS = 90;
export const MAX_ROTATION_PERIOD_DAYS = 2560;
export const DEFAULT_ROTATION_PERIOD_DAYS = 365;
export const MAX_ON_DEMAND_ROTATIONS = 25;
const DAY_MS = 86_400_000;

type KeyIdRequest = { keyId?: string | undefined };

/**
 * EnableKeyRotation: the first automatic rotation is one period from now. Changing the period of a key
 * that already rotates keeps its last rotation as the base (AWS does the same).
 */
export async function enableKeyRotation(deps: ServiceDeps, req: KeyIdRequest & { rotationPeriodInDays?: number | undefined }): Promise<void> {
  const period =
    optionalInt("RotationPeriodInDays", req.rotationPeriodInDays, MIN_ROTATION_PERIOD_DAYS, MAX_ROTATION_PERIOD_DAYS) ??
    DEFAULT_ROTATION_PERIOD_DAYS;
  const key = await managedKey(deps, req.keyId, "EnableKeyRotation");
  assertRotatable(key, "EnableKeyRotation");
  const now = deps.clock.now().getTime();
  const existing = await deps.metadata.getRotation(key.keyId);
  const base = existing ? existing.nextRotationDate.getTime() - existing.periodDays * DAY_MS : now;
  const next = Math.max(base + period * DAY_MS, now);
  await deps.metadata.setRotation(key.keyId, { keyId: key.keyId, periodDays: period, nextRotationDate: new Date(next) });
}

/** DisableKeyRotation: stops automatic rotation; existing versions stay (old ciphertexts keep decrypting). */
export async function disableKeyRotation(deps: ServiceDeps, req: KeyIdRequest): Promise<void> {
  const key = await managedKey(deps, req.keyId, "DisableKeyRotation");
  assertRotatable(key, "DisableKeyRotation");
  await deps.metadata.setRotation(key.keyId, undefined);
}

export interface KeyRotationStatus {
  keyId: string;
  keyRotationEnabled: boolean;
  rotationPeriodInDays?: number | undefined;
  nextRotationDate?: Date | undefined;
}

/** GetKeyRotationStatus: whether automatic rotation is on, its period and next date. */
export async function getKeyRotationStatus(deps: ServiceDeps, req: KeyIdRequest): Promise<KeyRotationStatus> {
  const key = await managedKey(deps, req.keyId, "GetKeyRotationStatus");
  assertRotatable(key, "GetKeyRotationStatus");
  const schedule = await deps.metadata.getRotation(key.keyId);
  return {
    keyId: keyArn(deps.partition, key.keyId),
    keyRotationEnabled: schedule !== undefined,
    rotationPeriodInDays: schedule?.periodDays,
    nextRotationDate: schedule?.nextRotationDate,
  };
}

/**
 * RotateKeyOnDemand: a new version now, whether or not automatic rotation is on; the automatic schedule is
 * not moved (as AWS). At most 25 per key (AWS's fixed quota): LimitExceededException after that.
 */
export async function rotateKeyOnDemand(deps: ServiceDeps, req: KeyIdRequest): Promise<{ keyId: string }> {
  const key = await managedKey(deps, req.keyId, "RotateKeyOnDemand");
  assertRotatable(key, "RotateKeyOnDemand");
  if ((await deps.metadata.countVersions(key.keyId, "ON_DEMAND")) >= MAX_ON_DEMAND_ROTATIONS) {
    throw new KmsError("LimitExceededException", `Key ${key.keyId} has reached the limit of ${MAX_ON_DEMAND_ROTATIONS} on-demand rotations.`);
  }
  await rotateKey(deps, key.keyId, "ON_DEMAND");
  return { keyId: keyArn(deps.partition, key.keyId) };
}

export interface RotationListEntry {
  keyId: string;
  rotationDate: Date;
  rotationType: RotationType;
}

/** ListKeyRotations: completed rotations (versions after the first), oldest first; Limit 1–1000, default 100. */
export async function listKeyRotations(
  deps: ServiceDeps,
  req: KeyIdRequest & { limit?: number | undefined; marker?: string | undefined },
): Promise<{ rotations: RotationListEntry[]; truncated: boolean; nextMarker?: string | undefined }> {
  const limit = optionalInt("Limit", req.limit, 1, 1000) ?? 100;
  const after = req.marker ? Number(decodeMarker("r1", req.marker)) : 1;
  if (!Number.isInteger(after) || after < 1) throw new KmsError("InvalidMarkerException", "The Marker is not one this service returned.");
  const key = await authorizedKey(deps, parseKeyId(deps.partition, req.keyId), "ListKeyRotations");
  assertStateAllows(key, "ListKeyRotations");
  assertRotatable(key, "ListKeyRotations");
  const rows = await deps.metadata.listVersions(key.keyId, { afterVersion: after, limit: limit + 1 });
  const { items, truncated, nextMarker } = page(rows, limit, "r1", (v) => String(v.version));
  const arn = keyArn(deps.partition, key.keyId);
  return {
    rotations: items.map((v) => ({ keyId: arn, rotationDate: v.createdAt, rotationType: v.rotationType ?? "AUTOMATIC" })),
    truncated,
    nextMarker,
  };
}
