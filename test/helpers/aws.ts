import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { KMSClient } from "@aws-sdk/client-kms";
import type { DaemonHandle } from "./daemon.js";

export const REGION = "us-east-1";

/** The AWS SDK's own KMS client, pointed at the daemon's facade. */
export function kmsClient(d: DaemonHandle, credentials = d.accessKey): KMSClient {
  return new KMSClient({ endpoint: d.awsEndpoint, region: REGION, credentials, maxAttempts: 1 });
}

export interface RawOptions {
  target?: string | undefined;
  body?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  signingDate?: Date;
  /** Changes applied after signing, to model tampering in transit. */
  afterSigning?: (req: { headers: Record<string, string>; body: string }) => void;
  unsigned?: boolean;
}

/** Sends one hand-built, SigV4-signed request and returns status, headers and the parsed JSON body. */
export async function rawCall(d: DaemonHandle, o: RawOptions = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown> }> {
  const url = new URL(d.awsEndpoint);
  const body = o.body ?? "{}";
  const headers: Record<string, string> = {
    host: url.host,
    "content-type": "application/x-amz-json-1.1",
    ...(o.target === undefined ? { "x-amz-target": "TrentService.GenerateRandom" } : o.target === "" ? {} : { "x-amz-target": o.target }),
  };
  const request = new HttpRequest({ method: "POST", protocol: "http:", hostname: url.hostname, port: Number(url.port), path: "/", headers, body });
  let signedHeaders = headers;
  if (!o.unsigned) {
    const signer = new SignatureV4({
      credentials: { accessKeyId: o.accessKeyId ?? d.accessKey.accessKeyId, secretAccessKey: o.secretAccessKey ?? d.accessKey.secretAccessKey },
      region: o.region ?? REGION,
      service: "kms",
      sha256: Hash.bind(null, "sha256"),
    });
    signedHeaders = (await signer.sign(request, { signingDate: o.signingDate ?? new Date() })).headers as Record<string, string>;
  }
  const sent = { headers: { ...signedHeaders }, body };
  o.afterSigning?.(sent);
  delete sent.headers.host;
  const res = await fetch(d.awsEndpoint, { method: "POST", headers: sent.headers, body: sent.body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}
