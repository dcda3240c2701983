/**
 * Retries with exponential backoff and full jitter (the AWS Architecture Blog's "full jitter": sleep a
 * uniformly random time in [0, min(cap, base·2^attempt))), which spreads a crowd of throttled clients out
 * instead of having them retry in lock-step.
 */
export interface RetryPolicy {
  /** Attempts in total, the first one included (1 = never retry). Default 5. */
  readonly maxAttempts: number;
  /** Backoff before the first retry is drawn from [0, baseDelayMs). Default 100. */
  readonly baseDelayMs: number;
  /** Upper bound of any backoff. Default 10 000. */
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 10_000 };

/** The backoff before retry number `retry` (1 for the first retry); `random` returns [0, 1). */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * ceiling);
}

/** What the retry loop needs from its surroundings, injectable for tests. */
export interface RetryEnvironment {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
}

export const REAL_ENVIRONMENT: RetryEnvironment = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

/**
 * Runs `attempt` until it succeeds, fails with an error `shouldRetry` refuses, runs out of attempts, or the
 * next backoff would end after `deadline` (epoch ms). The last error is thrown as it is.
 */
export async function withRetries<T>(
  attempt: (n: number) => Promise<T>,
  shouldRetry: (err: unknown) => boolean,
  policy: RetryPolicy,
  deadline: number,
  env: RetryEnvironment = REAL_ENVIRONMENT,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= policy.maxAttempts || !shouldRetry(err)) throw err;
      const delay = backoffDelay(policy, n, env.random);
      if (env.now() + delay >= deadline) throw err;
      await env.sleep(delay);
    }
  }
}
