import { validation } from "./errors.js";
import type { EncryptionContext } from "./types.js";

/** p11kms's own bound on the context (the AWS limit is not published; 8 KiB keeps AAD well inside GCM's). */
export const MAX_ENCRYPTION_CONTEXT_BYTES = 8192;
const MAX_PAIRS = 0xffff;

/** Rejects contexts that cannot be encoded unambiguously or are too large. */
export function validateEncryptionContext(ctx: EncryptionContext): void {
  const entries = Object.entries(ctx);
  if (entries.length > MAX_PAIRS) throw validation("EncryptionContext has too many pairs.");
  let total = 0;
  for (const [k, v] of entries) {
    if (typeof v !== "string") throw validation(`EncryptionContext value for '${k}' must be a string.`);
    if (k.length === 0) throw validation("EncryptionContext keys must not be empty.");
    total += Buffer.byteLength(k, "utf8") + Buffer.byteLength(v, "utf8");
  }
  if (total > MAX_ENCRYPTION_CONTEXT_BYTES) {
    throw validation(`EncryptionContext must be at most ${MAX_ENCRYPTION_CONTEXT_BYTES} bytes of keys and values.`);
  }
}

/**
 * Canonical bytes of a context, bound into the ciphertext as AAD. Pairs are sorted by the UTF-8 bytes of
 * their key and every field is length-prefixed, so {"a":"bc"} and {"ab":"c"} can never collide and map
 * order on the wire does not matter (AWS treats the context as an unordered map).
 *
 * Layout: u16 pair count, then per pair: u16 key length, key, u16 value length, value (all big-endian).
 */
export function encodeEncryptionContext(ctx: EncryptionContext): Buffer {
  const pairs = Object.entries(ctx)
    .map(([k, v]) => [Buffer.from(k, "utf8"), Buffer.from(v, "utf8")] as const)
    .sort((a, b) => Buffer.compare(a[0], b[0]));
  const size = 2 + pairs.reduce((n, [k, v]) => n + 4 + k.length + v.length, 0);
  const out = Buffer.allocUnsafe(size);
  let off = out.writeUInt16BE(pairs.length, 0);
  for (const [k, v] of pairs) {
    off = out.writeUInt16BE(k.length, off);
    off += k.copy(out, off);
    off = out.writeUInt16BE(v.length, off);
    off += v.copy(out, off);
  }
  return out;
}
