import { KmsError } from "./errors.js";

/**
 * The symmetric ciphertext blob (docs/ciphertext-format.md). Self-describing so Decrypt needs no KeyId:
 *
 *   offset size  field
 *   0      1     format version (0x01)
 *   1      16    key id (UUID bytes)
 *   17     4     backing-key version (u32 BE)
 *   21     1     algorithm (0x01 = AES-256-GCM)
 *   22     12    IV
 *   34     n     ciphertext (n = plaintext length)
 *   34+n   16    GCM tag
 *
 * The 34-byte header is part of the GCM additional data, so editing any header byte fails authentication
 * exactly like editing the ciphertext.
 */
export const BLOB_FORMAT_V1 = 0x01;
export const ALG_AES_256_GCM = 0x01;
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
export const HEADER_BYTES = 1 + 16 + 4 + 1 + IV_BYTES;
export const BLOB_OVERHEAD = HEADER_BYTES + TAG_BYTES;

export interface BlobHeader {
  readonly keyId: string;
  readonly version: number;
  readonly iv: Buffer;
}

export interface ParsedBlob extends BlobHeader {
  /** The header bytes exactly as received: they are authenticated as they are. */
  readonly header: Buffer;
  /** Ciphertext followed by the tag, as PKCS#11 AES-GCM decryption expects it. */
  readonly body: Buffer;
}

export function encodeHeader(h: BlobHeader): Buffer {
  if (h.iv.length !== IV_BYTES) throw new Error(`IV must be ${IV_BYTES} bytes`);
  const out = Buffer.alloc(HEADER_BYTES);
  out[0] = BLOB_FORMAT_V1;
  uuidToBytes(h.keyId).copy(out, 1);
  out.writeUInt32BE(h.version, 17);
  out[21] = ALG_AES_256_GCM;
  h.iv.copy(out, 22);
  return out;
}

/** Splits a blob; anything that is not a well-formed v1 blob is InvalidCiphertextException. */
export function parseBlob(blob: Uint8Array): ParsedBlob {
  const buf = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  if (buf.length < BLOB_OVERHEAD + 1 || buf[0] !== BLOB_FORMAT_V1 || buf[21] !== ALG_AES_256_GCM) {
    throw invalidCiphertext();
  }
  return {
    keyId: bytesToUuid(buf.subarray(1, 17)),
    version: buf.readUInt32BE(17),
    iv: buf.subarray(22, HEADER_BYTES),
    header: buf.subarray(0, HEADER_BYTES),
    body: buf.subarray(HEADER_BYTES),
  };
}

export function invalidCiphertext(cause?: unknown): KmsError {
  return new KmsError(
    "InvalidCiphertextException",
    "The ciphertext is invalid, was tampered with, or the encryption context does not match.",
    { cause },
  );
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}

function uuidToBytes(id: string): Buffer {
  if (!isUuid(id)) throw new Error(`not a key id: ${id}`);
  return Buffer.from(id.replaceAll("-", ""), "hex");
}

function bytesToUuid(b: Buffer): string {
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
