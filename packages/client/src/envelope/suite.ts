import { createCipheriv, createDecipheriv, hkdfSync } from "node:crypto";
import { EnvelopeError } from "./errors.js";

/**
 * Algorithm suite 0x0001, the only one so far: AES-256-GCM frames under a per-message key derived with
 * HKDF-SHA-512 from the data key and the message id, plus an HKDF-derived key commitment. Deriving a fresh
 * key per message is what makes IVs from a counter safe even when a cached data key encrypts many messages.
 */
export const SUITE_AES256_GCM_HKDF_SHA512_COMMIT = 0x0001;
export const SUPPORTED_SUITES: ReadonlySet<number> = new Set([SUITE_AES256_GCM_HKDF_SHA512_COMMIT]);

export const DATA_KEY_BYTES = 32;
export const MESSAGE_ID_BYTES = 32;
export const COMMITMENT_BYTES = 32;
export const TAG_BYTES = 16;
export const IV_BYTES = 12;

const LABEL = Buffer.from("p11kms-envelope-v1 ", "ascii");

function info(suite: number, purpose: "key" | "commit"): Buffer {
  const s = Buffer.alloc(2);
  s.writeUInt16BE(suite);
  return Buffer.concat([LABEL, s, Buffer.from(purpose, "ascii")]);
}

/** The message key and key commitment of one message. */
export function deriveMessageSecrets(suite: number, dataKey: Buffer, messageId: Buffer): { key: Buffer; commitment: Buffer } {
  if (dataKey.length !== DATA_KEY_BYTES) throw new EnvelopeError("InvalidInput", `a data key must be ${DATA_KEY_BYTES} bytes`);
  const key = Buffer.from(hkdfSync("sha512", dataKey, messageId, info(suite, "key"), 32));
  const commitment = Buffer.from(hkdfSync("sha512", dataKey, messageId, info(suite, "commit"), COMMITMENT_BYTES));
  return { key, commitment };
}

/**
 * The IV of sequence number `seq`: 8 zero bytes then seq, big-endian. The header uses 0, frames 1, 2, ...:
 * under a per-message key every IV is used once.
 */
export function ivFor(seq: number): Buffer {
  const iv = Buffer.alloc(IV_BYTES);
  iv.writeUInt32BE(seq, 8);
  return iv;
}

export const FRAME_REGULAR = 1;
export const FRAME_FINAL = 2;

/** A frame's AAD: message id, frame type (regular/final), sequence number, plaintext length (u64). */
export function frameAad(messageId: Buffer, type: number, seq: number, length: number): Buffer {
  return Buffer.from(new FrameAad(messageId).frame(type, seq, length));
}

/** One reusable AAD buffer per message (a frame's AAD is consumed by setAAD before the next is built). */
export class FrameAad {
  private readonly buf = Buffer.alloc(MESSAGE_ID_BYTES + 1 + 4 + 8);
  constructor(messageId: Buffer) {
    messageId.copy(this.buf, 0);
  }
  frame(type: number, seq: number, length: number): Buffer {
    const b = this.buf;
    b.writeUInt8(type, MESSAGE_ID_BYTES);
    b.writeUInt32BE(seq, MESSAGE_ID_BYTES + 1);
    // length < 2^32 (frames are at most 16 MiB): the high word is zero.
    b.writeUInt32BE(0, MESSAGE_ID_BYTES + 5);
    b.writeUInt32BE(length, MESSAGE_ID_BYTES + 9);
    return b;
  }
}

/** The header's authentication tag: AES-GCM with IV 0 over the header bytes as AAD, empty plaintext. */
export function headerTag(key: Buffer, headerBody: Buffer): Buffer {
  const c = createCipheriv("aes-256-gcm", key, ivFor(0));
  c.setAAD(headerBody);
  c.final();
  return c.getAuthTag();
}

/** Verifies the header tag (constant time inside OpenSSL). */
export function verifyHeaderTag(key: Buffer, headerBody: Buffer, tag: Buffer): boolean {
  const d = createDecipheriv("aes-256-gcm", key, ivFor(0));
  d.setAAD(headerBody);
  d.setAuthTag(tag);
  try {
    d.final();
    return true;
  } catch {
    return false;
  }
}
