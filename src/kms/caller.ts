/**
 * Who made a request and how they came in, as the facades establish it. Shared by authorization (key
 * policies and grants) and auditing (the event's userIdentity, sourceIPAddress and userAgent).
 */
export interface Caller {
  /** The authenticated principal: an ARN-like string, or "anonymous" for unauthenticated gRPC. */
  principal: string;
  authMethod: "mtls" | "sigv4" | "insecure" | "internal";
  sourceIp?: string;
  userAgent?: string;
  /** Unique per request; the AWS facade returns it as x-amzn-RequestId. */
  requestId: string;
}
