/**
 * A token bucket: `ratePerSecond` tokens accrue continuously up to `capacity`; each request takes one.
 * Time is passed in (milliseconds) rather than read, so the bucket is pure and tests move a clock.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSecond: number,
    readonly capacity: number,
    nowMs: number,
  ) {
    if (!(ratePerSecond > 0) || !(capacity >= 1)) throw new RangeError("a bucket needs a positive rate and a capacity of at least 1");
    this.tokens = capacity;
    this.last = nowMs;
  }

  /** Takes one token. Returns 0 when granted, otherwise the milliseconds until a token will be available. */
  take(nowMs: number): number {
    this.refill(nowMs);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / this.ratePerSecond));
  }

  /** Whether the bucket is full at `nowMs`, i.e. indistinguishable from a new one (safe to forget). */
  isFull(nowMs: number): boolean {
    this.refill(nowMs);
    return this.tokens >= this.capacity;
  }

  private refill(nowMs: number): void {
    // A clock that steps backwards (NTP) must never mint tokens, nor freeze the bucket forever.
    const elapsed = Math.max(0, nowMs - this.last);
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.ratePerSecond) / 1000);
    this.last = Math.max(this.last, nowMs);
  }
}
