import { createDecipheriv, timingSafeEqual } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";
import { ByteQueue } from "./byte-queue.js";
import { EnvelopeError } from "./errors.js";
import { type Header, parseHeader } from "./header.js";
import type { EncryptionContext, MaterialsProvider } from "./materials.js";
import { deriveMessageSecrets, FRAME_FINAL, FRAME_REGULAR, frameAad, ivFor, TAG_BYTES, verifyHeaderTag } from "./suite.js";

export interface DecryptOptions {
  /** Pairs the message's encryption context must contain (checked before any KMS call). */
  readonly expectedContext?: EncryptionContext;
  /** Refuse messages with more encrypted data keys than this (each may cost a KMS call). */
  readonly maxEncryptedDataKeys?: number;
}

/** What {@link DecryptStream} emits as "header" once the header is authenticated. */
export interface DecryptedHeader {
  readonly context: EncryptionContext;
  readonly keyArn: string;
  readonly messageId: Buffer;
  readonly frameLength: number;
}

const FINAL_MARKER = 0xffffffff;

/**
 * A Transform from an envelope message to plaintext. A frame's plaintext is pushed only after its tag has
 * verified; truncation (no final frame) and trailing bytes fail the stream at its end. WARNING: the frames
 * before a truncation point are authentic but the message is not complete until the stream finishes
 * without error: write to a temporary file and rename on success (as `p11kms decrypt-file` does).
 */
export class DecryptStream extends Transform {
  private readonly queue = new ByteQueue();
  private state: "header" | "frames" | "done" = "header";
  private header: Header | undefined;
  private key: Buffer | undefined;
  private seq = 0;

  constructor(
    private readonly provider: MaterialsProvider,
    private readonly options: DecryptOptions = {},
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.state === "done") {
      if (chunk.length > 0) cb(new EnvelopeError("TrailingData", "bytes follow the final frame"));
      else cb();
      return;
    }
    this.queue.push(chunk);
    if (this.state === "frames") {
      this.frames(cb);
      return;
    }
    let parsed;
    try {
      parsed = parseHeader(this.queue.all());
    } catch (err) {
      cb(err as Error);
      return;
    }
    if (!parsed) {
      cb();
      return;
    }
    this.queue.take(parsed.end);
    this.open(parsed.header, parsed.body, parsed.tag).then(() => this.frames(cb), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.state === "done") cb();
    else if (this.state === "header" && this.queue.length === 0) cb(new EnvelopeError("Truncated", "the input is empty: not an envelope message"));
    else cb(new EnvelopeError("Truncated", this.state === "header" ? "the message ends inside its header" : `the message ends after frame ${this.seq} without a final frame`));
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    this.key?.fill(0);
    cb(err);
  }

  private async open(header: Header, body: Buffer, tag: Buffer): Promise<void> {
    for (const [k, v] of Object.entries(this.options.expectedContext ?? {})) {
      if (!Object.hasOwn(header.context, k) || header.context[k] !== v) {
        throw new EnvelopeError("ContextMismatch", `the message's encryption context does not contain ${JSON.stringify(k)} with the expected value`);
      }
    }
    const max = this.options.maxEncryptedDataKeys;
    if (max !== undefined && header.encryptedDataKeys.length > max) {
      throw new EnvelopeError("MalformedMessage", `the message has ${header.encryptedDataKeys.length} encrypted data keys, more than the allowed ${max}`);
    }
    const m = await this.provider.decryptionMaterials({ context: header.context, suite: header.suite, encryptedDataKeys: header.encryptedDataKeys });
    const { key, commitment } = deriveMessageSecrets(header.suite, m.dataKey, header.messageId);
    m.dataKey.fill(0);
    if (!timingSafeEqual(commitment, header.commitment)) {
      key.fill(0);
      throw new EnvelopeError("CommitmentMismatch", "the data key does not match the message's key commitment");
    }
    if (!verifyHeaderTag(key, body, tag)) {
      key.fill(0);
      throw new EnvelopeError("HeaderAuthenticationFailed", "the message header failed authentication (it was modified)");
    }
    this.header = header;
    this.key = key;
    this.state = "frames";
    this.emit("header", { context: header.context, keyArn: m.keyArn, messageId: header.messageId, frameLength: header.frameLength } satisfies DecryptedHeader);
  }

  private frames(cb: TransformCallback): void {
    try {
      while (this.state === "frames" && this.frame());
      if (this.state === "done" && this.queue.length > 0) throw new EnvelopeError("TrailingData", "bytes follow the final frame");
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  /** Decrypts one frame if it is completely queued; returns whether it did. */
  private frame(): boolean {
    const h = this.header!;
    if (this.queue.length < 4) return false;
    const final = this.queue.peek(4).readUInt32BE(0) === FINAL_MARKER;
    const prefixLength = final ? 12 : 4;
    if (this.queue.length < prefixLength) return false;
    const prefix = this.queue.peek(prefixLength);
    const seq = prefix.readUInt32BE(final ? 4 : 0);
    const length = final ? prefix.readUInt32BE(8) : h.frameLength;
    if (length > h.frameLength) throw new EnvelopeError("MalformedMessage", `frame ${seq} is longer than the frame length`);
    if (seq !== this.seq + 1) throw new EnvelopeError("FrameAuthenticationFailed", `frame ${seq} is out of sequence (expected ${this.seq + 1})`);
    if (this.queue.length < prefixLength + length + TAG_BYTES) return false;

    this.queue.take(prefixLength);
    const decipher = createDecipheriv("aes-256-gcm", this.key!, ivFor(seq));
    decipher.setAAD(frameAad(h.messageId, final ? FRAME_FINAL : FRAME_REGULAR, seq, length));
    // WARNING: plaintext is held until final() has verified the tag; nothing is pushed before.
    const plain = (length > 0 ? this.queue.takeSlices(length) : []).map((s) => decipher.update(s));
    decipher.setAuthTag(this.queue.take(TAG_BYTES));
    try {
      decipher.final();
    } catch {
      for (const p of plain) p.fill(0);
      throw new EnvelopeError("FrameAuthenticationFailed", `frame ${seq} failed authentication`);
    }
    this.seq = seq;
    for (const p of plain) this.push(p);
    if (final) {
      this.state = "done";
      this.key!.fill(0);
    }
    return true;
  }
}
