import { encodeEncryptionContext } from "../contract.js";
import { EnvelopeError } from "./errors.js";
import { COMMITMENT_BYTES, MESSAGE_ID_BYTES, SUPPORTED_SUITES, TAG_BYTES } from "./suite.js";

/** One copy of the data key, encrypted under one KMS key. */
export interface EncryptedDataKey {
  /** Who can decrypt it: "p11kms" for a p11kms KMS key. */
  readonly providerId: string;
  /** The KMS key ARN. */
  readonly keyArn: string;
  /** The KMS ciphertext blob of the data key. */
  readonly blob: Buffer;
}

export interface Header {
  readonly version: number;
  readonly suite: number;
  readonly messageId: Buffer;
  readonly context: Readonly<Record<string, string>>;
  readonly encryptedDataKeys: readonly EncryptedDataKey[];
  readonly frameLength: number;
  readonly commitment: Buffer;
}

export const MAGIC = Buffer.from("P11E", "ascii");
export const FORMAT_VERSION = 1;
/** Bounds a decryptor enforces before allocating: a hostile header cannot make it buffer gigabytes. */
export const MAX_FRAME_LENGTH = 16 * 1024 * 1024;
export const MAX_HEADER_BYTES = 1024 * 1024;
export const DEFAULT_FRAME_LENGTH = 64 * 1024;

/** The header without its tag (the tag's AAD). Layout: docs/envelope-format.md. */
export function encodeHeaderBody(h: Header): Buffer {
  const parts: Buffer[] = [MAGIC, u8(h.version), u16(h.suite), h.messageId];
  const ctx = encodeEncryptionContext(h.context);
  parts.push(u32(ctx.length), ctx);
  if (h.encryptedDataKeys.length < 1 || h.encryptedDataKeys.length > 255) {
    throw new EnvelopeError("InvalidInput", "a message carries 1 to 255 encrypted data keys");
  }
  parts.push(u8(h.encryptedDataKeys.length));
  for (const k of h.encryptedDataKeys) parts.push(...field(Buffer.from(k.providerId, "utf8")), ...field(Buffer.from(k.keyArn, "utf8")), ...field(k.blob));
  parts.push(u32(h.frameLength), h.commitment);
  const body = Buffer.concat(parts);
  if (body.length + TAG_BYTES > MAX_HEADER_BYTES) throw new EnvelopeError("InvalidInput", "the header would exceed 1 MiB");
  return body;
}

/**
 * Parses a header from the start of `buf`. Returns undefined while more bytes are needed; throws when
 * what is there cannot be a valid header. On success `end` is the offset just past the header tag.
 */
export function parseHeader(buf: Buffer): { header: Header; body: Buffer; tag: Buffer; end: number } | undefined {
  const r = new Reader(buf);
  const magic = r.bytes(MAGIC.length);
  if (magic && !magic.equals(MAGIC)) throw new EnvelopeError("MalformedMessage", "not a p11kms envelope message (bad magic)");
  const version = r.u8();
  if (version !== undefined && version !== FORMAT_VERSION) throw new EnvelopeError("UnsupportedFormat", `unsupported format version ${version}`);
  const suite = r.u16();
  if (suite !== undefined && !SUPPORTED_SUITES.has(suite)) throw new EnvelopeError("UnsupportedFormat", `unsupported algorithm suite 0x${suite.toString(16).padStart(4, "0")}`);
  const messageId = r.bytes(MESSAGE_ID_BYTES);
  const ctxLen = r.u32();
  if (ctxLen !== undefined && ctxLen > MAX_HEADER_BYTES) throw new EnvelopeError("MalformedMessage", "encryption context too large");
  const ctxBytes = ctxLen === undefined ? undefined : r.bytes(ctxLen);
  const edkCount = r.u8();
  if (edkCount === 0) throw new EnvelopeError("MalformedMessage", "no encrypted data key");
  const edks: EncryptedDataKey[] = [];
  for (let i = 0; edkCount !== undefined && i < edkCount; i++) {
    const providerId = r.field();
    const keyArn = r.field();
    const blob = r.field();
    if (blob === undefined) break;
    edks.push({ providerId: providerId!.toString("utf8"), keyArn: keyArn!.toString("utf8"), blob: Buffer.from(blob) });
  }
  const frameLength = r.u32();
  if (frameLength !== undefined && (frameLength < 1 || frameLength > MAX_FRAME_LENGTH)) {
    throw new EnvelopeError("MalformedMessage", `frame length ${frameLength} out of range`);
  }
  const commitment = r.bytes(COMMITMENT_BYTES);
  const bodyEnd = r.offset;
  const tag = r.bytes(TAG_BYTES);
  if (!tag || !ctxBytes || !messageId || suite === undefined || frameLength === undefined || !commitment) return undefined;
  const header: Header = {
    version: version!,
    suite,
    messageId: Buffer.from(messageId),
    context: decodeContext(ctxBytes),
    encryptedDataKeys: edks,
    frameLength,
    commitment: Buffer.from(commitment),
  };
  return { header, body: Buffer.from(buf.subarray(0, bodyEnd)), tag: Buffer.from(tag), end: r.offset };
}

/** Reads the canonical context encoding back, refusing anything a writer would not produce. */
function decodeContext(b: Buffer): Record<string, string> {
  const r = new Reader(b);
  const n = r.u16();
  if (n === undefined) throw new EnvelopeError("MalformedMessage", "malformed encryption context");
  const pairs: [string, string][] = [];
  for (let i = 0; i < n; i++) {
    const k = r.field();
    const v = r.field();
    if (!k || !v) throw new EnvelopeError("MalformedMessage", "malformed encryption context");
    pairs.push([k.toString("utf8"), v.toString("utf8")]);
  }
  const ctx = Object.fromEntries(pairs);
  // Canonical form only (sorted, unique keys, no trailing bytes): one context has exactly one encoding.
  if (r.offset !== b.length || !encodeEncryptionContext(ctx).equals(b)) throw new EnvelopeError("MalformedMessage", "non-canonical encryption context");
  return ctx;
}

class Reader {
  offset = 0;
  private incomplete = false;
  constructor(
    private readonly buf: Buffer,
    private readonly limit = MAX_HEADER_BYTES,
  ) {}
  bytes(n: number): Buffer | undefined {
    // Declared lengths are checked against the bound before waiting for them: never buffer without limit.
    if (this.offset + n > this.limit) throw new EnvelopeError("MalformedMessage", "header too large");
    if (this.incomplete || this.offset + n > this.buf.length) {
      this.incomplete = true; // every later read is "need more" too
      return undefined;
    }
    const b = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return b;
  }
  u8 = () => this.bytes(1)?.readUInt8(0);
  u16 = () => this.bytes(2)?.readUInt16BE(0);
  u32 = () => this.bytes(4)?.readUInt32BE(0);
  field(): Buffer | undefined {
    const n = this.u16();
    return n === undefined ? undefined : this.bytes(n);
  }
}

function u8(v: number): Buffer {
  return Buffer.from([v]);
}
function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
}
function u32(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return b;
}
function field(b: Buffer): Buffer[] {
  if (b.length > 0xffff) throw new EnvelopeError("InvalidInput", "an encrypted data key field exceeds 65535 bytes");
  return [u16(b.length), b];
}
