/**
 * What the service layer reports about the request being served, for its audit event: the domain request
 * and response of the operation the facade called, and the KMS keys and backing-key versions the operation
 * touched. One scope per request, opened by the audit module around the facade's handling of it and handed
 * to the service view of that request (`service.as(caller, scope)`, kept in `deps.audit`).
 *
 * Passed explicitly rather than through AsyncLocalStorage: on Node 20 an active AsyncLocalStorage installs
 * promise hooks that tax every promise in the process (grpc-js's included), measured at tens of µs per call.
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

export function newAuditScope(): AuditScope {
  return { keys: [], versions: new Map() };
}

/** Records that the operation loaded this key. Cheap, never throws; no-op outside an audited request. */
export function noteKey(scope: AuditScope | undefined, keyId: string): void {
  if (scope && !scope.keys.includes(keyId)) scope.keys.push(keyId);
}

/** Records the backing-key version a cryptographic operation used (the material, never anything of it). */
export function noteBackingKey(scope: AuditScope | undefined, ref: { keyId: string; version: number }): { keyId: string; version: number } {
  if (scope) {
    if (!scope.keys.includes(ref.keyId)) scope.keys.push(ref.keyId);
    scope.versions.set(ref.keyId, ref.version);
  }
  return ref;
}
