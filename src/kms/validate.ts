import { KmsError, validation } from "./errors.js";
import type { Tag } from "./types.js";

/**
 * Field checks with the limits of the AWS KMS API reference. Each throws ValidationException (or the
 * exception AWS names for that field) with a message that names the field, so a client can fix the call.
 */

export function requireBytes(field: string, value: Uint8Array | undefined, min: number, max: number): Buffer {
  if (value === undefined || value.length === 0) {
    if (min > 0) throw validation(`${field} is required and must not be empty.`);
    return Buffer.alloc(0);
  }
  if (value.length < min || value.length > max) {
    throw validation(`${field} must be between ${min} and ${max} bytes long; got ${value.length}.`);
  }
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function requireString(field: string, value: string | undefined, min: number, max: number): string {
  if (value === undefined || value.length === 0) {
    if (min > 0) throw validation(`${field} is required.`);
    return "";
  }
  if (value.length < min || value.length > max) {
    throw validation(`${field} must be between ${min} and ${max} characters long.`);
  }
  return value;
}

export function optionalInt(field: string, value: number | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw validation(`${field} must be an integer from ${min} to ${max}; got ${value}.`);
  }
  return value;
}

/** Validates a value against an AWS enum; '' counts as absent (proto3 strings default to ''). */
export function optionalEnum<T extends string>(
  field: string,
  value: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined || value === "") return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw validation(`${field} '${value}' is not one of: ${allowed.join(", ")}.`);
  }
  return value as T;
}

export const MAX_GRANT_TOKENS = 10;

export function validateGrantTokens(tokens: readonly string[] | undefined): void {
  if (!tokens) return;
  if (tokens.length > MAX_GRANT_TOKENS) throw validation(`GrantTokens can hold at most ${MAX_GRANT_TOKENS} tokens.`);
  for (const t of tokens) requireString("GrantTokens member", t, 1, 8192);
}

export const MAX_TAGS = 50;

/** AWS tag rules: key 1–128, value 0–256, unique keys, no "aws:" prefix. Violations are TagException. */
export function validateTags(tags: readonly Tag[] | undefined): Tag[] {
  if (!tags || tags.length === 0) return [];
  if (tags.length > MAX_TAGS) throw new KmsError("TagException", `A key can have at most ${MAX_TAGS} tags.`);
  const seen = new Set<string>();
  for (const t of tags) {
    if (typeof t.tagKey !== "string" || t.tagKey.length < 1 || t.tagKey.length > 128) {
      throw new KmsError("TagException", "TagKey must be 1 to 128 characters long.");
    }
    if (typeof t.tagValue !== "string" || t.tagValue.length > 256) {
      throw new KmsError("TagException", "TagValue must be 0 to 256 characters long.");
    }
    if (t.tagKey.toLowerCase().startsWith("aws:")) {
      throw new KmsError("TagException", "Tag keys beginning with 'aws:' are reserved.");
    }
    if (seen.has(t.tagKey)) throw new KmsError("TagException", `Duplicate TagKey '${t.tagKey}'.`);
    seen.add(t.tagKey);
  }
  return tags.map((t) => ({ tagKey: t.tagKey, tagValue: t.tagValue }));
}

/** DryRun: every check has passed; AWS answers DryRunOperationException instead of doing the work. */
export function dryRunStop(req: { dryRun?: boolean | undefined }): void {
  if (req.dryRun) {
    throw new KmsError("DryRunOperationException", "The request would have succeeded, but the DryRun flag is set.");
  }
}
