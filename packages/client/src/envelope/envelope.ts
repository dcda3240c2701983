import { Readable, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { type CacheLimits, CachingMaterialsProvider } from "./cache.js";
import { type DecryptedHeader, type DecryptOptions, DecryptStream } from "./decrypt-stream.js";
import { type EncryptOptions, EncryptStream } from "./encrypt-stream.js";
import { EnvelopeError } from "./errors.js";
import { type KeyringKms, KmsKeyring } from "./keyring.js";
import type { EncryptionContext, MaterialsProvider } from "./materials.js";

export interface EnvelopeOptions {
  /** A KMS client ({@link P11KmsClient}) and the keys to use; or give `keyring` instead. */
  readonly kms?: KeyringKms;
  readonly keyIds?: readonly string[];
  /** Decrypt with any key the message names (see {@link KmsKeyringOptions.discovery}). */
  readonly discovery?: boolean;
  /** Any materials provider, e.g. a {@link KmsKeyring} built by hand. */
  readonly keyring?: MaterialsProvider & { readonly keyIds?: readonly string[] };
  /** Data-key caching; off unless given: `cache: { maxAgeMs: 60_000, maxMessages: 1000 }`. */
  readonly cache?: CacheLimits;
  /** Plaintext bytes per frame for new messages (default 64 KiB). */
  readonly frameLength?: number;
}

/**
 * Envelope encryption of data of any size with p11kms keys (format: docs/envelope-format.md).
 *
 * ```ts
 * const envelope = new Envelope({ kms: new P11KmsClient({ endpoint }), keyIds: [keyArn] });
 * await envelope.encryptPipe(fs.createReadStream("in"), fs.createWriteStream("out.p11e"), { context: { app: "x" } });
 * const { plaintext } = await envelope.decrypt(message, { expectedContext: { app: "x" } });
 * ```
 */
export class Envelope {
  private readonly provider: MaterialsProvider;

  constructor(private readonly o: EnvelopeOptions) {
    const keyring = o.keyring ?? (o.kms ? new KmsKeyring({ kms: o.kms, keyIds: o.keyIds ?? [], discovery: o.discovery }) : undefined);
    if (!keyring) throw new EnvelopeError("InvalidInput", "give either kms and keyIds, or a keyring");
    this.provider = o.cache ? new CachingMaterialsProvider(keyring, o.cache) : keyring;
  }

  /** A Transform from plaintext to an envelope message. */
  encryptStream(opts: Omit<EncryptOptions, "frameLength"> = {}): EncryptStream {
    return new EncryptStream(this.provider, { ...opts, frameLength: this.o.frameLength });
  }

  /** A Transform from an envelope message to plaintext; emits "header" ({@link DecryptedHeader}). */
  decryptStream(opts: DecryptOptions = {}): DecryptStream {
    return new DecryptStream(this.provider, opts);
  }

  /** Encrypts `input` into `output`; rejects (and destroys both) on any error. */
  async encryptPipe(input: Readable, output: Writable, opts: Omit<EncryptOptions, "frameLength"> = {}): Promise<void> {
    await pipeline(input, this.encryptStream(opts), output);
  }

  /** Decrypts `input` into `output`; resolves with the authenticated header once the whole message verified. */
  async decryptPipe(input: Readable, output: Writable, opts: DecryptOptions = {}): Promise<DecryptedHeader> {
    const d = this.decryptStream(opts);
    let header: DecryptedHeader | undefined;
    d.once("header", (h: DecryptedHeader) => (header = h));
    await pipeline(input, d, output);
    return header!;
  }

  /** Encrypts a buffer (its length is declared, so a data-key cache can account for it). */
  async encrypt(plaintext: Uint8Array, opts: { context?: EncryptionContext } = {}): Promise<Buffer> {
    const s = this.encryptStream({ ...opts, plaintextLength: plaintext.length });
    const out = collect(s);
    await pipeline(Readable.from([Buffer.from(plaintext)]), s);
    return out();
  }

  /** Decrypts a whole message held in memory. */
  async decrypt(message: Uint8Array, opts: DecryptOptions = {}): Promise<{ plaintext: Buffer } & DecryptedHeader> {
    const d = this.decryptStream(opts);
    let header: DecryptedHeader | undefined;
    d.once("header", (h: DecryptedHeader) => (header = h));
    const out = collect(d);
    await pipeline(Readable.from([Buffer.from(message)]), d);
    return { plaintext: out(), ...header! };
  }
}

function collect(s: Readable): () => Buffer {
  const parts: Buffer[] = [];
  s.on("data", (b: Buffer) => parts.push(b));
  return () => Buffer.concat(parts);
}
