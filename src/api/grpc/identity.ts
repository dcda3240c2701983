import type { Caller } from "../../kms/caller.js";
import { KmsError } from "../../kms/errors.js";

/** How gRPC callers are identified: by client certificate (mTLS) or, on loopback plaintext, as one configured principal. */
export type GrpcIdentityConfig =
  | { readonly mode: "mtls"; readonly principalFrom: "uri-san" | "subject-cn"; readonly accountId: string }
  | { readonly mode: "insecure"; readonly principal: string };

/** The parts of a peer certificate a principal is read from (node's PeerCertificate has these). */
export interface PeerCertificateLike {
  readonly subject?: { readonly CN?: string | readonly string[] } | undefined;
  readonly subjectaltname?: string | undefined;
}

/**
 * The principal a client certificate stands for. "uri-san": the first `URI:` subject alternative name,
 * verbatim (issue certificates with the principal's ARN as URI SAN); "subject-cn": the subject CN as an IAM
 * user of the account. The TLS layer has already verified the chain against clientCaFile and the validity
 * dates, so only the mapping can fail here (AccessDeniedException: authenticated, but as nobody usable).
 */
export function principalFromCertificate(cert: PeerCertificateLike | undefined, principalFrom: "uri-san" | "subject-cn", accountId: string): string {
  if (!cert || (!cert.subject && !cert.subjectaltname)) throw new KmsError("AccessDeniedException", "The call presented no client certificate.");
  if (principalFrom === "uri-san") {
    const uri = (cert.subjectaltname ?? "")
      .split(/,\s*/)
      .find((n) => n.startsWith("URI:"))
      ?.slice(4);
    if (!uri) throw new KmsError("AccessDeniedException", "The client certificate has no URI subject alternative name to take the principal from.");
    return uri;
  }
  const raw = cert.subject?.CN;
  const cn = typeof raw === "string" ? raw : raw?.[0];
  if (!cn || !/^[\w+=,.@-]{1,64}$/.test(cn)) throw new KmsError("AccessDeniedException", "The client certificate's subject CN is missing or not a valid IAM user name.");
  return `arn:aws:iam::${accountId}:user/${cn}`;
}

/**
 * The caller of one gRPC call: `unidentified` (its request id, address and user agent, see
 * unidentifiedCaller) with the principal the call authenticated as. Throws AccessDeniedException when a
 * client certificate maps to no principal.
 */
export function grpcCaller(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificateLike | undefined } | undefined }, unidentified: Caller, config: GrpcIdentityConfig): Caller {
  if (config.mode === "insecure") return { ...unidentified, principal: config.principal, authMethod: "insecure" };
  const cert = call.getAuthContext()?.sslPeerCertificate;
  return { ...unidentified, principal: principalFromCertificate(cert, config.principalFrom, config.accountId), authMethod: "mtls" };
}
