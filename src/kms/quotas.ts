import { KmsError } from "./errors.js";
import type { Clock } from "./ports.js";
import { DEFAULT_MANAGEMENT_RATE, type QuotaClass } from "./quota-classes.js";
import { TokenBucket } from "./token-bucket.js";

/** Per-second request rates per caller; see README "Configuration" (`quotas`). */
export interface QuotaLimits {
  readonly symmetric: number;
  readonly rsa: number;
  readonly ecc: number;
  /** Management operations by AWS operation name; others get `managementDefault`. */
  readonly operations: Readonly<Record<string, number>>;
  readonly managementDefault?: number;
  /** Bucket capacity in seconds of rate: how large a burst after a quiet period may be. */
  readonly burstSeconds: number;
}

/**
 * Request quotas: one token bucket per (caller, quota class). Over quota is a ThrottlingException, which
 * clients retry with backoff. Buckets are created on first use; a full bucket is equivalent to a missing
 * one, so when the table grows past `maxBuckets` full buckets are forgotten first, which bounds memory
 * without granting anyone more than its quota. Only with more simultaneously active callers than
 * `maxBuckets` are the oldest buckets reset too (a bounded table matters more than exactness then).
 */
export class RequestQuotas {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly limits: QuotaLimits,
    private readonly clock: Clock,
    private readonly maxBuckets = 10_000,
  ) {}

  /** The configured rate (requests per second) of a class. */
  rateOf(klass: QuotaClass): number {
    if (klass === "symmetric" || klass === "rsa" || klass === "ecc") return this.limits[klass];
    const operation = klass.slice("operation:".length);
    return Object.hasOwn(this.limits.operations, operation)
      ? this.limits.operations[operation]!
      : (this.limits.managementDefault ?? DEFAULT_MANAGEMENT_RATE);
  }

  /** Counts one request of `principal` against `klass`; throws ThrottlingException when over quota. */
  admit(principal: string, klass: QuotaClass): void {
    const now = this.clock.now().getTime();
    const id = `${klass}\u0000${principal}`;
    let bucket = this.buckets.get(id);
    if (!bucket) {
      if (this.buckets.size >= this.maxBuckets) this.evict(now);
      const rate = this.rateOf(klass);
      bucket = new TokenBucket(rate, Math.max(1, rate * this.limits.burstSeconds), now);
      this.buckets.set(id, bucket);
    }
    const waitMs = bucket.take(now);
    if (waitMs > 0) {
      throw new KmsError(
        "ThrottlingException",
        `You have exceeded the rate at which you may call KMS (${describe(klass)}: ${bucket.ratePerSecond} per second). Reduce the frequency of your calls.`,
      );
    }
  }

  /** How many buckets are tracked (for tests and the metrics gauge). */
  get size(): number {
    return this.buckets.size;
  }

  private evict(now: number): void {
    for (const [id, b] of this.buckets) if (b.isFull(now)) this.buckets.delete(id);
    // Still full of active callers: drop the oldest quarter (they start again with a full bucket).
    if (this.buckets.size >= this.maxBuckets) {
      let n = Math.ceil(this.maxBuckets / 4);
      for (const id of this.buckets.keys()) {
        if (n-- <= 0) break;
        this.buckets.delete(id);
      }
    }
  }
}

function describe(klass: QuotaClass): string {
  if (klass === "symmetric") return "symmetric cryptographic operations";
  if (klass === "rsa") return "RSA cryptographic operations";
  if (klass === "ecc") return "ECC cryptographic operations";
  return klass.slice("operation:".length);
}
