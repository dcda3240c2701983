import { readFileSync } from "node:fs";
import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { KeyManagementServiceClient } from "../gen/p11kms/v1/kms.js";
import { GRPC_ERROR_TYPE_KEY } from "@p11kms/client/contract";

export type KmsClient = KeyManagementServiceClient;

/** mTLS client material (file paths): the CA that issued the daemon's certificate, and this client's certificate and key. */
export interface ClientTls {
  readonly caBundle?: string | undefined;
  readonly clientCert?: string | undefined;
  readonly clientKey?: string | undefined;
}

/** A client for the daemon: plaintext, or TLS (with a client certificate for mTLS) when any TLS file is given. */
export function connect(endpoint: string, tls: ClientTls = {}): KmsClient {
  if (!tls.caBundle && !tls.clientCert && !tls.clientKey) return new KeyManagementServiceClient(endpoint, credentials.createInsecure());
  if (!tls.clientCert !== !tls.clientKey) throw new Error("--client-cert and --client-key go together");
  const read = (p: string | undefined) => (p ? readFileSync(p) : null);
  return new KeyManagementServiceClient(endpoint, credentials.createSsl(read(tls.caBundle), read(tls.clientKey), read(tls.clientCert)));
}

type UnaryMethod<Req, Res> = (
  req: Req,
  metadata: Metadata,
  options: { deadline: Date },
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

/** Calls one unary RPC with a deadline and resolves with the response. */
export function call<Req, Res>(client: KmsClient, method: UnaryMethod<Req, Res>, req: Req, timeoutMs: number): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, req, new Metadata(), { deadline: new Date(Date.now() + timeoutMs) }, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

/** The AWS exception name of a failed call (from trailing metadata), or a gRPC-level description. */
export function errorType(err: ServiceError): string {
  const v = err.metadata?.get(GRPC_ERROR_TYPE_KEY)[0];
  return typeof v === "string" ? v : `gRPC status ${err.code}`;
}
