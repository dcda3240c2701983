import { randomUUID } from "node:crypto";
import type { Metadata } from "@grpc/grpc-js";
import type { Caller } from "../../kms/caller.js";

/**
 * The caller of a gRPC call before (or without) identification, for its audit event: a call refused while
 * identifying its caller (no or a bad client certificate) is still recorded, with the principal
 * "unauthenticated", its source address and user agent.
 */
export function unidentifiedCaller(call: { readonly metadata: Metadata; getPeer(): string }, authMethod: Caller["authMethod"]): Caller {
  const ua = call.metadata.get("user-agent")[0];
  const ip = peerAddress(call.getPeer());
  return {
    principal: "unauthenticated",
    authMethod,
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
