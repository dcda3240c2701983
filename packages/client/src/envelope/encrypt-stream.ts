import { createCipheriv, randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { EnvelopeError } from "./errors.js";
import { ByteQueue } from "./byte-queue.js";
import { DEFAULT_FRAME_LENGTH, encodeHeaderBody, FORMAT_VERSION, MAX_FRAME_LENGTH } from "./header.js";
import type { EncryptionContext, MaterialsProvider } from "./materials.js";
import { deriveMessageSecrets, FRAME_FINAL, FRAME_REGULAR, FrameAad, headerTag, ivFor, MESSAGE_ID_BYTES, SUITE_AES256_GCM_HKDF_SHA512_COMMIT } from "./suite.js";

export interface EncryptOptions {
  /** Bound to the header and to every encrypted data key; not secret (stored in clear in the header). */
  readonly context?: EncryptionContext;
  /** Plaintext bytes per frame (default 64 KiB). */
  readonly frameLength?: number;
  /** The exact plaintext length when known: lets a data-key cache account for it, and is enforced. */
  readonly plaintextLength?: number;
}

const MAX_FRAMES = 0xfffffffe; // the final frame's sequence number must still fit in 32 bits

/**
 * A Transform from plaintext to an envelope message (docs/envelope-format.md). Memory is bounded by one
 * frame plus the chunks in flight, whatever the stream's size. A plaintext frame is emitted only once the
 * next byte exists (or the input ends), because whether a frame is the final one is bound into it.
 */
export class EncryptStream extends Transform {
  private readonly queue = new ByteQueue();
  private readonly frameLength: number;
  private readonly context: EncryptionContext;
  private started: Promise<void> | undefined;
  private key: Buffer | undefined;
  private messageId = Buffer.alloc(0);
  private seq = 0;
  private total = 0;
  private readonly iv = ivFor(0);
  private pendingTag = Buffer.alloc(0);
  private aad = new FrameAad(Buffer.alloc(MESSAGE_ID_BYTES));

  constructor(
    private readonly provider: MaterialsProvider,
    private readonly options: EncryptOptions = {},
  ) {
    super();
    this.frameLength = options.frameLength ?? DEFAULT_FRAME_LENGTH;
    this.context = options.context ?? {};
    if (!Number.isInteger(this.frameLength) || this.frameLength < 1 || this.frameLength > MAX_FRAME_LENGTH) {
      throw new EnvelopeError("InvalidInput", `frameLength must be an integer from 1 to ${MAX_FRAME_LENGTH}`);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.total += chunk.length;
    if (this.options.plaintextLength !== undefined && this.total > this.options.plaintextLength) {
      cb(new EnvelopeError("PlaintextLengthMismatch", `the plaintext is longer than the declared ${this.options.plaintextLength} bytes`));
      return;
    }
    this.queue.push(chunk);
    if (this.key) {
      // The common path stays synchronous: no promise per chunk.
      this.tryFrames(cb);
      return;
    }
    this.start().then(() => this.tryFrames(cb), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.options.plaintextLength !== undefined && this.total !== this.options.plaintextLength) {
      cb(new EnvelopeError("PlaintextLengthMismatch", `the plaintext is ${this.total} bytes, ${this.options.plaintextLength} were declared`));
      return;
    }
    this.start().then(() => {
      try {
        this.emitFrame(FRAME_FINAL, this.queue.length);
        this.key!.fill(0);
        cb();
      } catch (err) {
        cb(err as Error);
      }
    }, cb);
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.key?.fill(0);
    cb(err);
  }

  private tryFrames(cb: TransformCallback): void {
    try {
      while (this.queue.length > this.frameLength) this.emitFrame(FRAME_REGULAR, this.frameLength);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  private start(): Promise<void> {
    this.started ??= (async () => {
      const suite = SUITE_AES256_GCM_HKDF_SHA512_COMMIT;
      const materials = await this.provider.encryptionMaterials({ context: this.context, suite, plaintextLength: this.options.plaintextLength });
      this.messageId = randomBytes(MESSAGE_ID_BYTES);
      this.aad = new FrameAad(this.messageId);
      const { key, commitment } = deriveMessageSecrets(suite, materials.dataKey, this.messageId);
      materials.dataKey.fill(0); // from here on only the message key exists
      this.key = key;
      const body = encodeHeaderBody({
        version: FORMAT_VERSION,
        suite,
        messageId: this.messageId,
        context: this.context,
        encryptedDataKeys: materials.encryptedDataKeys,
        frameLength: this.frameLength,
        commitment,
      });
      this.push(body);
      this.push(headerTag(key, body));
    })();
    return this.started;
  }

  private emitFrame(type: number, length: number): void {
    if (this.seq >= MAX_FRAMES) throw new EnvelopeError("InvalidInput", "the message exceeds the maximum number of frames");
    const seq = ++this.seq;
    // The IV and AAD buffers are reused: createCipheriv and setAAD copy them into the cipher context.
    this.iv.writeUInt32BE(seq, 8);
    const cipher = createCipheriv("aes-256-gcm", this.key!, this.iv);
    cipher.setAAD(this.aad.frame(type, seq, length));
    // The previous frame's tag and this frame's prefix go out as one small chunk, then the ciphertext as
    // it comes from the cipher: two chunks per frame, and no copy of the frame (a copy, or a chunk more,
    // costs several percent of throughput — see docs/benchmarks-envelope.md).
    const small = Buffer.allocUnsafe(this.pendingTag.length + (type === FRAME_FINAL ? 12 : 4));
    let off = this.pendingTag.copy(small, 0);
    if (type === FRAME_FINAL) {
      off = small.writeUInt32BE(0xffffffff, off);
      off = small.writeUInt32BE(seq, off);
      small.writeUInt32BE(length, off);
    } else small.writeUInt32BE(seq, off);
    this.push(small);
    for (const slice of length > 0 ? this.queue.takeSlices(length) : []) this.push(cipher.update(slice));
    cipher.final();
    this.pendingTag = cipher.getAuthTag();
    if (type === FRAME_FINAL) this.push(this.pendingTag);
  }
}
