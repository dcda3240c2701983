import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { channelSecurity, isLoopbackEndpoint } from "../../packages/client/src/client/credentials.js";
import { KmsClientError } from "../../packages/client/src/client/errors.js";
import { backoffDelay, type RetryEnvironment, withRetries } from "../../packages/client/src/client/retry.js";

const POLICY = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };

function fakeEnv(random = () => 0.999): RetryEnvironment & { slept: number[] } {
  let t = 0;
  const slept: number[] = [];
  return {
    slept,
    now: () => t,
    random,
    sleep: async (ms) => {
      slept.push(ms);
      t += ms;
    },
  };
}

const throttled = () => new KmsClientError("ThrottlingException", "slow down", status.RESOURCE_EXHAUSTED, "Decrypt", 1);

describe("backoffDelay (full jitter)", () => {
  it("draws from [0, min(cap, base·2^(n-1)))", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(POLICY, n, () => 0.999))).toEqual([99, 199, 399, 799, 999]);
    expect(backoffDelay(POLICY, 3, () => 0)).toBe(0);
    expect(backoffDelay(POLICY, 30, () => 0.5)).toBe(500);
  });
});

describe("withRetries", () => {
  it("retries retryable failures with growing backoff until success", async () => {
    const env = fakeEnv();
    let n = 0;
    const res = await withRetries(async () => (++n < 4 ? Promise.reject(throttled()) : "ok"), () => true, POLICY, 60_000, env);
    expect(res).toBe("ok");
    expect(env.slept).toEqual([99, 199, 399]);
  });

  it("gives up after maxAttempts with the last error", async () => {
    const env = fakeEnv();
    let n = 0;
    const attempt = async () => {
      n++;
      return Promise.reject(throttled());
    };
    await expect(withRetries(attempt, () => true, POLICY, 60_000, env)).rejects.toMatchObject({ type: "ThrottlingException" });
    expect(env.slept).toHaveLength(4);
    expect(n).toBe(5);
  });

  it("does not retry what shouldRetry refuses", async () => {
    const env = fakeEnv();
    await expect(withRetries(async () => Promise.reject(new Error("no")), () => false, POLICY, 60_000, env)).rejects.toThrow("no");
    expect(env.slept).toEqual([]);
  });

  it("never sleeps past the deadline", async () => {
    const env = fakeEnv();
    await expect(withRetries(async () => Promise.reject(throttled()), () => true, POLICY, 250, env)).rejects.toBeInstanceOf(KmsClientError);
    expect(env.slept).toEqual([99]); // 99 + 199 would end after 250
  });
});

describe("KmsClientError.retryable", () => {
  it.each([
    ["ThrottlingException", status.RESOURCE_EXHAUSTED, true],
    ["NetworkingError", status.UNAVAILABLE, true],
    ["KeyUnavailableException", status.UNAVAILABLE, true],
    ["LimitExceededException", status.RESOURCE_EXHAUSTED, false],
    ["NotFoundException", status.NOT_FOUND, false],
    ["TimeoutError", status.DEADLINE_EXCEEDED, false],
  ])("%s (%i) -> %s", (type, code, retryable) => {
    expect(new KmsClientError(type, "m", code, "Op", 1).retryable).toBe(retryable);
  });
});

describe("channelSecurity", () => {
  it("allows plaintext only to loopback unless asked", () => {
    expect(isLoopbackEndpoint("127.0.0.1:50051")).toBe(true);
    expect(isLoopbackEndpoint("localhost:1")).toBe(true);
    expect(isLoopbackEndpoint("[::1]:1")).toBe(true);
    expect(isLoopbackEndpoint("kms.example.com:443")).toBe(false);
    expect(() => channelSecurity("kms.example.com:443", undefined, undefined)).toThrow(/refusing plaintext/);
    expect(() => channelSecurity("kms.example.com:443", undefined, true)).not.toThrow();
  });

  it("builds TLS credentials, refusing half an mTLS identity", () => {
    expect(channelSecurity("kms.example.com:443", {}, undefined).credentials._isSecure()).toBe(true);
    expect(channelSecurity("h:1", { serverName: "kms.internal" }, undefined).options).toEqual({ "grpc.ssl_target_name_override": "kms.internal" });
    expect(() => channelSecurity("h:1", { cert: "x" }, undefined)).toThrow(/go together/);
  });
});
