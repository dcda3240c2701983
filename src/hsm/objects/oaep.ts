import { createHash, timingSafeEqual } from "node:crypto";

/**
 * EME-OAEP decoding (RFC 8017 §7.1.2) for the RSAES_OAEP_SHA_256 fallback: the device does the private-key
 * operation (CKM_RSA_X_509, raw RSA) and this turns the encoded message into the plaintext.
 *
 * WARNING: constant time by construction. Every check is folded into one flag with bitwise arithmetic and
 * there is exactly one failure exit, after all the work is done, so timing and errors cannot tell which
 * check failed (Manger's attack recovers plaintexts from such a distinction). Callers must map the single
 * failure to the same error they use for every other bad ciphertext.
 */
export function oaepDecode(em: Buffer, modulusBytes: number, hash: "sha1" | "sha256", label = Buffer.alloc(0)): Buffer | undefined {
  const hLen = hash === "sha1" ? 20 : 32;
  const k = modulusBytes;
  if (k < 2 * hLen + 2 || em.length > k) return undefined; // depends only on public sizes
  // Raw RSA output may come without its leading zero bytes: restore the k-byte encoding.
  const full = Buffer.alloc(k);
  em.copy(full, k - em.length);

  const lHash = createHash(hash).update(label).digest();
  const maskedSeed = full.subarray(1, 1 + hLen);
  const maskedDb = full.subarray(1 + hLen);
  const seed = xor(maskedSeed, mgf1(hash, maskedDb, hLen));
  const db = xor(maskedDb, mgf1(hash, seed, k - hLen - 1));

  let bad = isZeroByte(full[0]!) ^ 1;
  bad |= Number(!timingSafeEqual(db.subarray(0, hLen), lHash));
  // Find the 0x01 after the zero padding without branching on secret bytes.
  let looking = 1;
  let index = 0;
  for (let i = hLen; i < db.length; i++) {
    const b = db[i]!;
    const isOne = isZeroByte(b ^ 0x01);
    const isZero = isZeroByte(b);
    index |= -(looking & isOne) & i; // records i only the first time a 0x01 is seen
    bad |= looking & (isOne ^ 1) & (isZero ^ 1); // a non-zero, non-0x01 byte before the separator
    looking &= isOne ^ 1;
  }
  bad |= looking; // no separator at all

  const message = bad === 0 ? Buffer.from(db.subarray(index + 1)) : undefined;
  full.fill(0);
  seed.fill(0);
  db.fill(0);
  return message;
}

/** 1 when b (0..255) is zero, else 0, without a branch. */
function isZeroByte(b: number): number {
  return ((b - 1) >>> 31) & 1;
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** MGF1 (RFC 8017 B.2.1) with the same hash as the OAEP digest, as RSAES_OAEP_SHA_256 specifies. */
function mgf1(hash: "sha1" | "sha256", seed: Buffer, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  const counter = Buffer.alloc(4);
  for (let off = 0, c = 0; off < length; c++) {
    counter.writeUInt32BE(c, 0);
    off += createHash(hash).update(seed).update(counter).digest().copy(out, off);
  }
  return out;
}
