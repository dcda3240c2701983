import type { HashName } from "./mechanisms.js";

/**
 * The few DER structures the adapter needs, hand-rolled because they are tiny and fixed: ECDSA signatures
 * (PKCS#11 speaks raw r‖s, AWS and X.509 speak DER), the OCTET STRING around CKA_EC_POINT, and the
 * DigestInfo prefix of PKCS#1 v1.5 signatures.
 */

/** Raw r‖s (each `size` bytes) → DER `SEQUENCE { INTEGER r, INTEGER s }`. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/**
 * DER ECDSA signature → raw r‖s of `size` bytes each, or undefined when it is not strictly encoded
 * (non-minimal integers, trailing bytes, negative or oversized values): such a signature is simply invalid.
 */
export function ecdsaDerToRaw(der: Buffer, size: number): Buffer | undefined {
  const seq = readTlv(der, 0, 0x30);
  if (!seq || seq.end !== der.length) return undefined;
  const r = readTlv(der, seq.start, 0x02);
  const s = r && readTlv(der, r.end, 0x02);
  if (!r || !s || s.end !== seq.end) return undefined;
  const out = Buffer.alloc(2 * size);
  for (const [i, v] of [r, s].entries()) {
    let n = der.subarray(v.start, v.end);
    if (n.length === 0 || (n[0]! & 0x80) !== 0) return undefined; // empty or negative
    if (n.length > 1 && n[0] === 0 && (n[1]! & 0x80) === 0) return undefined; // non-minimal
    if (n[0] === 0) n = n.subarray(1);
    if (n.length > size) return undefined;
    n.copy(out, i * size + size - n.length);
  }
  return out;
}

/**
 * CKA_EC_POINT as the bare point of `expectedLength` bytes. PKCS#11 says it is DER-wrapped in an OCTET
 * STRING (SoftHSM2 does so); some modules return the bare point, which also starts with 0x04 — the known
 * length tells the two apart, where parsing alone could mistake a bare point for a wrapped one.
 */
export function ecPointValue(value: Buffer, expectedLength: number): Buffer {
  if (value.length === expectedLength) return value;
  const t = readTlv(value, 0, 0x04);
  if (!t || t.end !== value.length || t.end - t.start !== expectedLength) {
    throw new Error(`unexpected CKA_EC_POINT encoding (${value.length} bytes)`);
  }
  return value.subarray(t.start, t.end);
}

/** A bare EC point as CKA_EC_POINT wants it when creating a public key object: a DER OCTET STRING. */
export function derOctetString(value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x04]), derLength(value.length), value]);
}

/** DER DigestInfo prefixes (RFC 8017 §9.2 note 1): PKCS#1 v1.5 signs prefix ‖ digest. */
export const DIGEST_INFO_PREFIX: Record<Exclude<HashName, "sha1">, Buffer> = {
  sha256: Buffer.from("3031300d060960864801650304020105000420", "hex"),
  sha384: Buffer.from("3041300d060960864801650304020205000430", "hex"),
  sha512: Buffer.from("3051300d060960864801650304020305000440", "hex"),
};

function derInteger(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length - 1 && unsigned[i] === 0) i++;
  let v = unsigned.subarray(i);
  if ((v[0]! & 0x80) !== 0) v = Buffer.concat([Buffer.from([0]), v]);
  return Buffer.concat([Buffer.from([0x02]), derLength(v.length), v]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  return Buffer.from([0x82, n >> 8, n & 0xff]);
}

/** One TLV with the expected tag at `off`; definite, minimal lengths only. */
function readTlv(b: Buffer, off: number, tag: number): { start: number; end: number } | undefined {
  if (off + 2 > b.length || b[off] !== tag) return undefined;
  let len = b[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const count = len & 0x7f;
    if (count === 0 || count > 2 || start + count > b.length) return undefined;
    len = 0;
    for (let k = 0; k < count; k++) len = (len << 8) | b[start + k]!;
    if (len < 0x80 || (count === 2 && len < 0x100)) return undefined; // not minimal
    start += count;
  }
  const end = start + len;
  return end <= b.length ? { start, end } : undefined;
}
