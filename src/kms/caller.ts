/**
 * Who is calling: the one identity object both facades build and every layer below uses (authorization,
 * request quotas, audit). Facades derive it from the transport — a client certificate (mTLS), a SigV4
 * access key — never from anything the request body says.
 */
export interface Caller {
  /** ARN-like principal string, e.g. `arn:aws:iam::111122223333:user/alice`. */
  principal: string;
  /**
   * How the principal was established. "internal" is the daemon itself (lifecycle jobs, lookups, tests that
   * drive the service directly): it is never built from network input and bypasses authorization.
   */
  authMethod: "mtls" | "sigv4" | "insecure" | "internal";
  sourceIp?: string;
  userAgent?: string;
  requestId: string;
}

/** The daemon acting on its own behalf (never reachable from a network request). */
export const INTERNAL_CALLER: Caller = Object.freeze({ principal: "internal", authMethod: "internal", requestId: "internal" });

/** The account id of an ARN-like principal (`arn:aws:iam::<account>:...`), if it has one. */
export function accountOf(principal: string): string | undefined {
  const m = /^arn:[^:]*:[^:]*:[^:]*:(\d{12}):/.exec(principal);
  return m?.[1];
}
