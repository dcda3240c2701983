import { createCipheriv, randomBytes } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { EnvelopeError } from "./errors.js";
import { ByteQueue } from "./byte-queue.js";
import { DEFAULT_FRAME_LENGTH, encodeHeaderBody, FORMAT_VERSION, MAX_FRAME_LENGTH } from "./header.js";
import type { EncryptionContext, MaterialsProvider } from "./materials.js";
import { deriveMessageSecrets, FRAME_FINAL, FRAME_REGULAR, frameAad, headerTag, ivFor, MESSAGE_ID_BYTES, SUITE_AES256_GCM_HKDF_SHA512_COMMIT } from "./suite.js";

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
    const cipher = createCipheriv("aes-256-gcm", this.key!, ivFor(seq));
    cipher.setAAD(frameAad(this.messageId, type, seq, length));
    const prefix = Buffer.allocUnsafe(type === FRAME_FINAL ? 12 : 4);
    if (type === FRAME_FINAL) {
      prefix.writeUInt32BE(0xffffffff, 0);
      prefix.writeUInt32BE(seq, 4);
      prefix.writeUInt32BE(length, 8);
    } else prefix.writeUInt32BE(seq, 0);
    this.push(prefix);
    // Pushed as separate chunks, not concatenated: a copy of every frame would cost ~20% of throughput.
    for (const slice of length > 0 ? this.queue.takeSlices(length) : []) this.push(cipher.update(slice));
    cipher.final();
    this.push(cipher.getAuthTag());
  }
}
