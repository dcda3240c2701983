import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { P11KmsClient } from "../../packages/client/src/client/kms-client.js";
import { KmsClientError } from "../../packages/client/src/client/errors.js";
import { type DaemonHandle, startDaemon, writeConfig } from "../helpers/daemon.js";
import { createTestToken } from "../helpers/softhsm.js";

// 5 symmetric requests per second with a burst of 5; CreateKey one at a time, one per 2 s.
const QUOTAS = `quotas:
  enabled: true
  symmetric: 5
  operations:
    CreateKey: 0.5
  burstSeconds: 1
`;

let d: DaemonHandle;

beforeAll(async () => {
  const token = createTestToken("p11kms-backoff");
  d = await startDaemon({ token, configPath: writeConfig(token, QUOTAS) });
});
afterAll(async () => {
  await d?.stop();
  d?.token.remove();
});

async function settle<T>(ps: Promise<T>[]): Promise<{ ok: number; errors: KmsClientError[] }> {
  const r = await Promise.allSettled(ps);
  return { ok: r.filter((x) => x.status === "fulfilled").length, errors: r.flatMap((x) => (x.status === "rejected" ? [x.reason as KmsClientError] : [])) };
}

describe("the client SDK under throttling (real daemon, tiny quota)", () => {
  it("without retries, a burst over the quota is throttled", async () => {
    const c = new P11KmsClient({ endpoint: d.endpoint, retry: { maxAttempts: 1 } });
    const r = await settle(Array.from({ length: 15 }, () => c.generateRandom({ numberOfBytes: 4 })));
    c.close();
    expect(r.ok).toBeLessThanOrEqual(6);
    expect(r.errors.length).toBeGreaterThanOrEqual(9);
    expect(r.errors.every((e) => e instanceof KmsClientError && e.type === "ThrottlingException" && e.attempts === 1)).toBe(true);
    await new Promise((res) => setTimeout(res, 1100)); // let the bucket refill for the next test
  });

  it("with backoff and full jitter, the same burst completes", async () => {
    const c = new P11KmsClient({ endpoint: d.endpoint, retry: { maxAttempts: 12, baseDelayMs: 100, maxDelayMs: 2000 }, timeoutMs: 20_000 });
    const t = Date.now();
    const r = await settle(Array.from({ length: 15 }, () => c.generateRandom({ numberOfBytes: 4 })));
    c.close();
    expect(r.errors).toEqual([]);
    expect(r.ok).toBe(15);
    // 15 requests at 5/s with a burst of 5 cannot finish in under ~2 s: the retries really waited.
    expect(Date.now() - t).toBeGreaterThanOrEqual(1800);
  }, 30_000);

  it("never retries a non-idempotent CreateKey", async () => {
    const c = new P11KmsClient({ endpoint: d.endpoint, retry: { maxAttempts: 10, baseDelayMs: 10 } });
    const r = await settle(Array.from({ length: 5 }, () => c.createKey()));
    c.close();
    expect(r.ok).toBe(1); // burst of max(1, 0.5 × 1 s) = 1
    expect(r.errors.map((e) => [e.type, e.attempts])).toEqual(Array(4).fill(["ThrottlingException", 1]));
  });
});
