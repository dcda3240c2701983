import { createHash, randomBytes } from "node:crypto";
import { encodeEncryptionContext } from "../contract.js";
import type { EncryptedDataKey } from "./header.js";
import type { DecryptionMaterials, EncryptionContext, EncryptionMaterials, MaterialsProvider } from "./materials.js";

/** Limits on reusing one data key, as in the AWS Encryption SDK's caching materials manager. */
export interface CacheLimits {
  /** How long a data key may be used after it was generated (ms). Required: there is no safe default. */
  readonly maxAgeMs: number;
  /** Messages one data key may encrypt. Default 2^32. */
  readonly maxMessages?: number;
  /** Plaintext bytes one data key may encrypt. Default 2^53 - 1. */
  readonly maxBytes?: number;
  /** Entries kept (least recently used go first). Default 100. */
  readonly capacity?: number;
  /** Injectable clock (ms), for tests. */
  readonly now?: () => number;
}

interface Entry {
  readonly dataKey: Buffer;
  readonly encryptedDataKeys: readonly EncryptedDataKey[];
  readonly keyArn: string;
  readonly createdAt: number;
  messages: number;
  bytes: number;
}

/**
 * A data-key cache in front of a keyring: encryption reuses a data key for the same keyring and encryption
 * context until one of the limits is reached; decryption reuses a decrypted data key for the same encrypted
 * data keys and context until it is `maxAgeMs` old. Every message still gets its own message key (HKDF with
 * a fresh message id), so reuse never repeats an IV under one key. Only messages of declared length are
 * cached (the bytes limit could not be enforced otherwise); others get a fresh data key. Evicted keys are
 * zeroed; callers get copies, which they zero.
 */
export class CachingMaterialsProvider implements MaterialsProvider {
  private readonly entries = new Map<string, Entry>();
  // A random partition: two providers never share entries, even for the same keys and context.
  private readonly partition = randomBytes(16);
  private readonly now: () => number;

  constructor(
    private readonly inner: MaterialsProvider & { readonly keyIds?: readonly string[] },
    private readonly limits: CacheLimits,
  ) {
    if (!(limits.maxAgeMs > 0)) throw new RangeError("maxAgeMs must be positive");
    this.now = limits.now ?? Date.now;
  }

  async encryptionMaterials(req: { context: EncryptionContext; suite: number; plaintextLength?: number | undefined }): Promise<EncryptionMaterials> {
    const length = req.plaintextLength;
    if (length === undefined || length > this.maxBytes) return this.inner.encryptionMaterials(req);
    const id = this.id("encrypt", req.suite, req.context, (this.inner.keyIds ?? []).join("\n"));
    const hit = this.lookup(id);
    if (hit && hit.messages + 1 <= (this.limits.maxMessages ?? 2 ** 32) && hit.bytes + length <= this.maxBytes) {
      hit.messages += 1;
      hit.bytes += length;
      return { dataKey: Buffer.from(hit.dataKey), encryptedDataKeys: hit.encryptedDataKeys };
    }
    if (hit) this.evict(id);
    const fresh = await this.inner.encryptionMaterials(req);
    this.store(id, { dataKey: Buffer.from(fresh.dataKey), encryptedDataKeys: fresh.encryptedDataKeys, keyArn: "", createdAt: this.now(), messages: 1, bytes: length });
    return fresh;
  }

  async decryptionMaterials(req: { context: EncryptionContext; suite: number; encryptedDataKeys: readonly EncryptedDataKey[] }): Promise<DecryptionMaterials> {
    const edks = req.encryptedDataKeys.map((k) => `${k.providerId}\n${k.keyArn}\n${k.blob.toString("base64")}`).join("\n");
    const id = this.id("decrypt", req.suite, req.context, edks);
    const hit = this.lookup(id);
    if (hit) return { dataKey: Buffer.from(hit.dataKey), keyArn: hit.keyArn };
    const fresh = await this.inner.decryptionMaterials(req);
    this.store(id, { dataKey: Buffer.from(fresh.dataKey), encryptedDataKeys: [], keyArn: fresh.keyArn, createdAt: this.now(), messages: 0, bytes: 0 });
    return fresh;
  }

  /** Entries currently cached (tests, diagnostics). */
  get size(): number {
    return this.entries.size;
  }

  /** Zeroes and drops every entry. */
  clear(): void {
    for (const id of [...this.entries.keys()]) this.evict(id);
  }

  private get maxBytes(): number {
    return this.limits.maxBytes ?? Number.MAX_SAFE_INTEGER;
  }

  private id(kind: string, suite: number, context: EncryptionContext, keys: string): string {
    return createHash("sha512")
      .update(this.partition)
      .update(`${kind}\n${suite}\n`)
      .update(encodeEncryptionContext(context))
      .update(keys)
      .digest("base64");
  }

  private lookup(id: string): Entry | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (this.now() - e.createdAt >= this.limits.maxAgeMs) {
      this.evict(id);
      return undefined;
    }
    // Least-recently-used order: a hit moves to the end.
    this.entries.delete(id);
    this.entries.set(id, e);
    return e;
  }

  private store(id: string, e: Entry): void {
    this.evict(id);
    this.entries.set(id, e);
    const capacity = this.limits.capacity ?? 100;
    for (const old of this.entries.keys()) {
      if (this.entries.size <= capacity) break;
      this.evict(old);
    }
  }

  private evict(id: string): void {
    const e = this.entries.get(id);
    if (!e) return;
    e.dataKey.fill(0);
    this.entries.delete(id);
  }
}
