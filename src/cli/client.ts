import { credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import { KeyManagementServiceClient } from "../gen/p11kms/v1/kms.js";
import { GRPC_ERROR_TYPE_KEY } from "../api/error-table.js";

export type KmsClient = KeyManagementServiceClient;

export function connect(endpoint: string): KmsClient {
  return new KeyManagementServiceClient(endpoint, credentials.createInsecure());
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
