import { readFileSync } from "node:fs";
import { type ChannelCredentials, credentials } from "@grpc/grpc-js";

/** TLS for the connection to the daemon; PEM as a Buffer, a string, or `{ file }` to read one. */
export interface TlsOptions {
  /** Trusted CA certificates; the system roots when absent. */
  readonly ca?: Pem;
  /** Client certificate chain and key, for mTLS (both or neither). */
  readonly cert?: Pem;
  readonly key?: Pem;
  /** The name to verify the server certificate against, when it differs from the endpoint's host. */
  readonly serverName?: string;
}
export type Pem = Buffer | string | { readonly file: string };

/**
 * The channel credentials and options for an endpoint. Without `tls`, plaintext is used only for loopback
 * endpoints (requests carry plaintext and data keys) unless `insecure: true` says the caller means it.
 */
export function channelSecurity(
  endpoint: string,
  tls: TlsOptions | undefined,
  insecure: boolean | undefined,
): { credentials: ChannelCredentials; options: Record<string, string> } {
  if (tls) {
    if (!!tls.cert !== !!tls.key) throw new TypeError("tls.cert and tls.key go together (mutual TLS needs both)");
    const creds = credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert));
    return { credentials: creds, options: tls.serverName ? { "grpc.ssl_target_name_override": tls.serverName } : {} };
  }
  if (!insecure && !isLoopbackEndpoint(endpoint)) {
    throw new TypeError(`refusing plaintext gRPC to ${endpoint}: configure tls, or set insecure: true to accept plaintext off loopback`);
  }
  return { credentials: credentials.createInsecure(), options: {} };
}

function pem(p: Pem | undefined): Buffer | null {
  if (p === undefined) return null;
  if (Buffer.isBuffer(p)) return p;
  return typeof p === "string" ? Buffer.from(p) : readFileSync(p.file);
}

/** host:port (or [v6]:port, or unix:) naming this machine. */
export function isLoopbackEndpoint(endpoint: string): boolean {
  if (endpoint.startsWith("unix:")) return true;
  const host = endpoint.replace(/^dns:(\/\/\/)?/, "").replace(/:\d+$/, "");
  return host === "localhost" || host === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
