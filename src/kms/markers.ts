import { KmsError } from "./errors.js";

/**
 * Opaque pagination markers: base64url of a kind prefix and the last item returned. The prefix stops a
 * marker of one list (ListKeys) from being replayed into another (ListAliases) with a confusing result.
 */
export function encodeMarker(kind: string, last: string): string {
  return Buffer.from(`${kind}:${last}`, "utf8").toString("base64url");
}

/** The last item a marker names; InvalidMarkerException when it is not one this service returned. */
export function decodeMarker(kind: string, marker: string): string {
  const text = marker.length <= 1024 ? Buffer.from(marker, "base64url").toString("utf8") : "";
  if (!text.startsWith(`${kind}:`) || text.length <= kind.length + 1) {
    throw new KmsError("InvalidMarkerException", "The Marker is not one this service returned.");
  }
  return text.slice(kind.length + 1);
}

/** One page of a list: the items, and the marker of the next page when there is one. */
export function page<T>(rows: T[], limit: number, kind: string, lastOf: (t: T) => string): { items: T[]; truncated: boolean; nextMarker?: string | undefined } {
  const items = rows.slice(0, limit);
  const truncated = rows.length > limit;
  return { items, truncated, nextMarker: truncated ? encodeMarker(kind, lastOf(items[items.length - 1]!)) : undefined };
}
