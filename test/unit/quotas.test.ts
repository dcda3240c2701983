import { describe, expect, it } from "vitest";
import { KmsError } from "../../src/kms/errors.js";
import { quotaClass } from "../../src/kms/quota-classes.js";
import { RequestQuotas } from "../../src/kms/quotas.js";
import { TokenBucket } from "../../src/kms/token-bucket.js";

/** A clock tests move by hand. */
function manualClock(start = 1_000_000) {
  let t = start;
  return { now: () => new Date(t), advance: (ms: number) => (t += ms) };
}

const LIMITS = { symmetric: 10, rsa: 2, ecc: 1, operations: { CreateKey: 1 }, burstSeconds: 1 };

function throttled(fn: () => void): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(KmsError);
    return (err as KmsError).code;
  }
}

describe("TokenBucket", () => {
  it("grants its capacity at once, then refills at its rate", () => {
    const b = new TokenBucket(2, 3, 0);
    expect([b.take(0), b.take(0), b.take(0)]).toEqual([0, 0, 0]);
    expect(b.take(0)).toBe(500); // one token at 2/s takes 500 ms
    expect(b.take(499)).toBeGreaterThan(0); // almost a token: a millisecond or two to wait
    expect(b.take(499)).toBeLessThanOrEqual(2);
    expect(b.take(500)).toBe(0);
    expect(b.take(500)).toBeGreaterThan(0);
  });

  it("never holds more than its capacity after a long pause", () => {
    const b = new TokenBucket(100, 5, 0);
    for (let i = 0; i < 5; i++) b.take(0);
    const granted = Array.from({ length: 10 }, () => b.take(3_600_000)).filter((w) => w === 0).length;
    expect(granted).toBe(5);
  });

  it("mints nothing when the clock steps backwards", () => {
    const b = new TokenBucket(1, 1, 10_000);
    expect(b.take(10_000)).toBe(0);
    expect(b.take(5_000)).toBeGreaterThan(0);
    expect(b.take(10_999)).toBeGreaterThan(0);
    expect(b.take(11_000)).toBe(0);
  });

  it("refuses a zero rate", () => {
    expect(() => new TokenBucket(0, 1, 0)).toThrow(RangeError);
  });
});

describe("quotaClass", () => {
  it.each([
    ["Encrypt", undefined, "symmetric"],
    ["Decrypt", "SYMMETRIC_DEFAULT", "symmetric"],
    ["GenerateDataKey", "RSA_2048", "symmetric"],
    ["GenerateRandom", undefined, "symmetric"],
    ["Sign", "RSA_3072", "rsa"],
    ["Decrypt", "RSA_4096", "rsa"],
    ["Verify", "ECC_NIST_P256", "ecc"],
    ["Sign", "SM2", "ecc"],
    ["CreateKey", undefined, "operation:CreateKey"],
    ["DescribeKey", "RSA_2048", "operation:DescribeKey"],
  ])("%s on %s counts as %s", (op, spec, klass) => {
    expect(quotaClass(op, spec)).toBe(klass);
  });
});

describe("RequestQuotas", () => {
  it("throttles a caller over its quota and lets it through once tokens accrue", () => {
    const clock = manualClock();
    const q = new RequestQuotas(LIMITS, clock);
    for (let i = 0; i < 10; i++) q.admit("alice", "symmetric");
    expect(throttled(() => q.admit("alice", "symmetric"))).toBe("ThrottlingException");
    clock.advance(100); // 10/s: one token per 100 ms
    expect(throttled(() => q.admit("alice", "symmetric"))).toBeUndefined();
    expect(throttled(() => q.admit("alice", "symmetric"))).toBe("ThrottlingException");
  });

  it("keeps callers and classes apart", () => {
    const q = new RequestQuotas(LIMITS, manualClock());
    q.admit("alice", "rsa");
    q.admit("alice", "rsa");
    expect(throttled(() => q.admit("alice", "rsa"))).toBe("ThrottlingException");
    expect(throttled(() => q.admit("bob", "rsa"))).toBeUndefined();
    expect(throttled(() => q.admit("alice", "ecc"))).toBeUndefined();
    expect(throttled(() => q.admit("alice", "symmetric"))).toBeUndefined();
  });

  it("gives management operations their own quota, with a default for unlisted ones", () => {
    const q = new RequestQuotas({ ...LIMITS, managementDefault: 3 }, manualClock());
    expect(q.rateOf("operation:CreateKey")).toBe(1);
    expect(q.rateOf("operation:ListKeys")).toBe(3);
    q.admit("alice", "operation:CreateKey");
    expect(throttled(() => q.admit("alice", "operation:CreateKey"))).toBe("ThrottlingException");
    expect(throttled(() => q.admit("alice", "operation:ListKeys"))).toBeUndefined();
  });

  it("names the exceeded quota in the message", () => {
    const q = new RequestQuotas(LIMITS, manualClock());
    q.admit("a", "ecc");
    expect(() => q.admit("a", "ecc")).toThrow(/ECC cryptographic operations: 1 per second/);
  });

  it("a burst of burstSeconds × rate after a quiet period", () => {
    const clock = manualClock();
    const q = new RequestQuotas({ ...LIMITS, burstSeconds: 3 }, clock);
    let granted = 0;
    for (let i = 0; i < 40; i++) if (!throttled(() => q.admit("a", "symmetric"))) granted++;
    expect(granted).toBe(30);
  });

  it("bounds its table, forgetting full buckets first", () => {
    const clock = manualClock();
    const q = new RequestQuotas(LIMITS, clock, 4);
    q.admit("busy", "ecc"); // now empty: must survive eviction
    for (const p of ["p1", "p2", "p3"]) q.admit(p, "symmetric");
    clock.advance(10_000); // every symmetric bucket is full again; "busy"'s ecc bucket is full too
    q.admit("busy", "ecc");
    q.admit("p4", "symmetric"); // the table is at its bound: full buckets go
    expect(q.size).toBeLessThanOrEqual(2);
    expect(throttled(() => q.admit("busy", "ecc"))).toBe("ThrottlingException");
  });
});
