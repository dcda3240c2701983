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
