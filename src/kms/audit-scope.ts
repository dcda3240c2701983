import { AsyncLocalStorage } from "node:async_hooks";

/**
 * What the service layer reports about the request being served, for its audit event: the domain request
 * and response of the operation the facade called, and the KMS keys and backing-key versions the operation
 * touched. One scope per request, opened by the audit module around the facade's handling of it.
 */
export interface AuditScope {
  /** The domain request of the first service call for `operation` (set once; later calls are internal). */
  request?: unknown;
  response?: unknown;
  /** Key ids (not ARNs) the operation loaded, in order. */
  readonly keys: string[];
  /** Backing-key versions used, "keyId" → version. */
  readonly versions: Map<string, number>;
}

export const auditScope = new AsyncLocalStorage<AuditScope>();

/** Records that the operation loaded this key. Cheap, never throws; no-op outside an audited request. */
export function noteKey(keyId: string): void {
  const s = auditScope.getStore();
  if (s && !s.keys.includes(keyId)) s.keys.push(keyId);
}

/** Records the backing-key version a cryptographic operation used (the material, never anything of it). */
export function noteBackingKey(ref: { keyId: string; version: number }): { keyId: string; version: number } {
  const s = auditScope.getStore();
  if (s) {
    if (!s.keys.includes(ref.keyId)) s.keys.push(ref.keyId);
    s.versions.set(ref.keyId, ref.version);
  }
  return ref;
}
