import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";

/**
 * Signs one AWS JSON 1.1 request for replay by h2load. A SigV4 signature stays valid for the 5 minutes the
 * server allows, so one signature serves a whole scenario — as fair to the server as fresh signatures (it
 * verifies every request in full) and free for the load generator.
 */
export async function presign(opts: {
  url: URL;
  target: string;
  body: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
}): Promise<Record<string, string>> {
  const signer = new SignatureV4({
    credentials: opts.credentials,
    region: opts.region,
    service: "kms",
    sha256: Hash.bind(null, "sha256"),
    applyChecksum: false,
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: "POST",
      protocol: "http:",
      hostname: opts.url.hostname,
      port: Number(opts.url.port),
      path: "/",
      headers: {
        host: opts.url.host,
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": `TrentService.${opts.target}`,
      },
      body: opts.body,
    }),
  );
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.host; // h2load sends Host from the URL, byte for byte the signed value
  return headers;
}
