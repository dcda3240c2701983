import { randomUUID } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import type { Caller } from "../../kms/caller.js";
import { ANONYMOUS_PRINCIPAL } from "../quota-gate.js";

/**
 * The caller of a gRPC call. Until mTLS identifies callers, every gRPC caller is the principal
 * "anonymous" on a plaintext (loopback-only) channel.
 */
export function grpcCaller(call: { readonly metadata: Metadata; getPeer(): string }): Caller {
  const ua = call.metadata.get("user-agent")[0];
  const ip = peerAddress(call.getPeer());
  return {
    principal: ANONYMOUS_PRINCIPAL,
    authMethod: "insecure",
    ...(ip ? { sourceIp: ip } : {}),
    ...(typeof ua === "string" && ua ? { userAgent: ua } : {}),
    requestId: randomUUID(),
  };
}

/** "ipv4:127.0.0.1:5000", "127.0.0.1:5000", "[::1]:5000" → the address without the port. */
export function peerAddress(peer: string): string | undefined {
  const p = peer.replace(/^ipv[46]:/, "");
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(p);
  if (bracketed) return bracketed[1];
  const m = /^([^:]+):\d+$/.exec(p);
  return m ? m[1] : p || undefined;
}
