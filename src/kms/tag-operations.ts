import type { ServiceDeps } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import { decodeMarker, page } from "./markers.js";
import { managedKey } from "./state-operations.js";
import type { Tag } from "./types.js";
import { MAX_TAGS, optionalInt, requireString, validateTags } from "./validate.js";

/** UpdateKeyDescription: 0–8192 characters, as CreateKey's Description. */
export async function updateKeyDescription(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; description?: string | undefined },
): Promise<void> {
  if (req.description === undefined) throw validation("Description is required.");
  const description = requireString("Description", req.description, 0, 8192);
  const key = await managedKey(deps, req.keyId, "UpdateKeyDescription");
  await deps.metadata.updateDescription(key.keyId, description);
}

/**
 * TagResource: adds tags or overwrites the values of existing keys. AWS's limits: tag key 1–128, value
 * 0–256, no `aws:` prefix (TagException), at most 50 tags per key after the change (LimitExceededException;
 * nothing of the request is applied then).
 */
export async function tagResource(deps: ServiceDeps, req: { keyId?: string | undefined; tags?: readonly Tag[] | undefined }): Promise<void> {
  if (!req.tags || req.tags.length === 0) throw validation("Tags is required and must not be empty.");
  const tags = validateTags(req.tags);
  const key = await managedKey(deps, req.keyId, "TagResource");
  if (!(await deps.metadata.putTags(key.keyId, tags, MAX_TAGS))) {
    throw new KmsError("LimitExceededException", `A key can have at most ${MAX_TAGS} tags.`);
  }
}

/** UntagResource: removes the named tag keys (keys the key does not have are ignored, as AWS). */
export async function untagResource(deps: ServiceDeps, req: { keyId?: string | undefined; tagKeys?: readonly string[] | undefined }): Promise<void> {
  if (!req.tagKeys || req.tagKeys.length === 0) throw validation("TagKeys is required and must not be empty.");
  if (req.tagKeys.length > MAX_TAGS) throw validation(`TagKeys can hold at most ${MAX_TAGS} keys.`);
  for (const k of req.tagKeys) {
    if (k.length < 1 || k.length > 128) throw new KmsError("TagException", "TagKey must be 1 to 128 characters long.");
  }
  const key = await managedKey(deps, req.keyId, "UntagResource");
  await deps.metadata.removeTags(key.keyId, req.tagKeys);
}

/** ListResourceTags: ordered by tag key, Limit 1–50 (default 50). */
export async function listResourceTags(
  deps: ServiceDeps,
  req: { keyId?: string | undefined; limit?: number | undefined; marker?: string | undefined },
): Promise<{ tags: Tag[]; truncated: boolean; nextMarker?: string | undefined }> {
  const limit = optionalInt("Limit", req.limit, 1, 50) ?? 50;
  const after = req.marker ? decodeMarker("t1", req.marker) : undefined;
  const key = await managedKey(deps, req.keyId, "ListResourceTags");
  const rows = await deps.metadata.listTags(key.keyId, { afterTagKey: after, limit: limit + 1 });
  const { items, truncated, nextMarker } = page(rows, limit, "t1", (t) => t.tagKey);
  return { tags: items, truncated, nextMarker };
}
