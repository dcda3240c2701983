import { KmsError } from "../kms/errors.js";
import type { Clock } from "../kms/ports.js";
import { DEFAULT_OPERATION_RATES, needsKeySpec, quotaClass } from "../kms/quota-classes.js";
import { RequestQuotas } from "../kms/quotas.js";
import { INTERNAL_CALLER } from "../kms/caller.js";
import type { CallerScopedService } from "../kms/service.js";
import type { Metrics } from "../observability/metrics.js";

/** Looks up the key spec of a KeyId parameter; undefined when it names no key. Never throws. */
export type KeySpecLookup = (keyId: string) => Promise<string | undefined>;

/**
 * Request quotas as both facades apply them, identically: classify the request (looking up the key's spec
 * when the class depends on it), count it against the caller's bucket, and record throttling. A facade
 * calls {@link QuotaGate.admit} after authenticating and decoding, before the service runs.
 */
export class QuotaGate {
  private readonly specs = new Map<string, string | undefined>();

  constructor(
    private readonly quotas: RequestQuotas,
    private readonly lookup: KeySpecLookup,
    private readonly metrics: Metrics,
  ) {}

  async admit(api: "grpc" | "aws", principal: string, operation: string, keyId: string | undefined): Promise<void> {
    const spec = keyId && needsKeySpec(operation) ? await this.keySpec(keyId) : undefined;
    const klass = quotaClass(operation, spec);
    try {
      this.quotas.admit(principal, klass);
    } catch (err) {
      if (err instanceof KmsError) this.metrics.throttled.inc({ api, class: klass });
      throw err;
    }
  }

  // A key's spec never changes, so the lookup is cached (bounded: cleared when it grows large).
  private async keySpec(keyId: string): Promise<string | undefined> {
    if (this.specs.has(keyId)) return this.specs.get(keyId);
    const spec = await this.lookup(keyId);
    if (this.specs.size >= 10_000) this.specs.clear();
    if (spec !== undefined) this.specs.set(keyId, spec);
    return spec;
  }
}

/** The key a request's quota class depends on: `KeyId`, or for ReEncrypt the destination key. */
export function quotaKeyId(req: unknown): string | undefined {
  if (typeof req !== "object" || req === null) return undefined;
  const r = req as Record<string, unknown>;
  for (const f of ["keyId", "KeyId", "destinationKeyId", "DestinationKeyId"]) {
    if (typeof r[f] === "string" && r[f] !== "") return r[f];
  }
  return undefined;
}

/**
 * The gate the daemon's configuration asks for: undefined when quotas are disabled. The key spec lookup goes
 * through DescribeKey (a metadata read, cached), so it sees exactly the keys the service would.
 */
export function quotaGateFor(
  config: { enabled: boolean; symmetric: number; rsa: number; ecc: number; operations: Record<string, number>; burstSeconds: number },
  service: CallerScopedService,
  metrics: Metrics,
  clock: Clock,
): QuotaGate | undefined {
  if (!config.enabled) return undefined;
  const limits = { ...config, operations: { ...DEFAULT_OPERATION_RATES, ...config.operations } };
  const quotas = new RequestQuotas(limits, clock);
  for (const klass of ["symmetric", "rsa", "ecc"] as const) metrics.quotaLimit.set({ class: klass }, limits[klass]);
  for (const [op, r] of Object.entries(limits.operations)) metrics.quotaLimit.set({ class: `operation:${op}` }, r);
  const lookup: KeySpecLookup = async (keyId) => {
    try {
      // The daemon's own lookup: not the caller's request, so not subject to the caller's key policy.
      return (await service.as(INTERNAL_CALLER).describeKey({ keyId })).keySpec;
    } catch {
      return undefined; // the service reports the bad key id itself, with the right error
    }
  };
  return new QuotaGate(quotas, lookup, metrics);
}
