/**
 * What the client and the server must agree on byte for byte, and nothing else: the server (p11kms) imports
 * this module from the published package, so the two sides cannot drift apart, and the client package
 * depends on nothing of the server's.
 */

/** The gRPC trailing-metadata key that carries the AWS exception name of a failed call. */
export const GRPC_ERROR_TYPE_KEY = "x-kms-error-type";

/**
 * Canonical bytes of an encryption context: the server binds them into a ciphertext's AAD, and the envelope
 * format stores them in its header. Pairs are sorted by the UTF-8 bytes of their key and every field is
 * length-prefixed, so {"a":"bc"} and {"ab":"c"} can never collide and map order on the wire does not matter.
 *
 * Layout: u16 pair count, then per pair: u16 key length, key, u16 value length, value (all big-endian).
 * Bounds (pairs, lengths) are the caller's to check: the server refuses larger contexts before encoding.
 */
export function encodeEncryptionContext(ctx: Readonly<Record<string, string>>): Buffer {
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
