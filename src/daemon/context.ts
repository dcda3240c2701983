import type { Config } from "../config/schema.js";
import type { Clock } from "../kms/ports.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";

/** What every start-up stage is given: the validated configuration, the log, the metrics and the clock. */
export interface DaemonContext {
  readonly config: Config & { baseDir: string };
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly clock: Clock;
}

/**
 * FOR TESTS ONLY: P11KMS_TEST_CLOCK_OFFSET_MS shifts the daemon's clock by that many milliseconds, so an
 * end-to-end test can restart the daemon "days later" and watch a deletion deadline pass while it was
 * down. Never set it in production: deletions and rotations would happen at the wrong time.
 */
export function systemClockFor(log: Logger): Clock {
  const offset = Number(process.env.P11KMS_TEST_CLOCK_OFFSET_MS ?? 0);
  if (!Number.isFinite(offset) || offset === 0) return { now: () => new Date() };
  log.warn({ offsetMs: offset }, "P11KMS_TEST_CLOCK_OFFSET_MS is set: the clock is shifted (testing only)");
  return { now: () => new Date(Date.now() + offset) };
}
