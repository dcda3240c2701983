import { createHash, timingSafeEqual } from "node:crypto";
import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AccessKey } from "./access-keys.js";
import { AwsProtocolError } from "./protocol-errors.js";

/** How far a request's X-Amz-Date may be from the server's clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;
/** Headers a request must sign: without x-amz-target signed, the operation could be swapped in transit. */
const REQUIRED_SIGNED = ["host", "x-amz-date", "x-amz-target"];

export interface SignedRequest {
  readonly method: string;
  readonly path: string;
  /** Lower-case names, as node:http delivers them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

interface ParsedAuthorization {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
  signedHeaders: string[];
  signature: string;
}

/**
 * Verifies an `Authorization: AWS4-HMAC-SHA256 ...` header for service `kms` and returns the access key that
 * signed. The canonical request and signature are recomputed with @smithy/signature-v4 (the AWS SDK's own
 * implementation) from exactly the headers the client says it signed, and compared in constant time.
 */
export class SigV4Verifier {
  private readonly signers = new Map<string, SignatureV4>();

  constructor(
    private keys: ReadonlyMap<string, AccessKey>,
    private readonly region: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * Replaces the accepted access keys (SIGHUP): requests verified from now on use the new set, so a removed
   * or rotated key stops working at once. The per-key signers, which hold the secrets, go with the old set.
   */
  replaceKeys(keys: ReadonlyMap<string, AccessKey>): void {
    this.keys = keys;
    this.signers.clear();
  }

  async verify(req: SignedRequest): Promise<AccessKey> {
    const auth = parseAuthorization(header(req, "authorization"));
    const amzDate = header(req, "x-amz-date");
    if (!amzDate) throw incomplete("Authorization header requires existence of a 'X-Amz-Date' header.");
    const signingDate = parseAmzDate(amzDate);
    const skew = Math.abs(this.now().getTime() - signingDate.getTime());
    if (skew > MAX_CLOCK_SKEW_MS) {
      throw invalid(`Signature expired: ${amzDate} is more than 5 minutes away from the server time ${formatAmzDate(this.now())}.`);
    }
    if (auth.date !== amzDate.slice(0, 8)) {
      throw invalid(`Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.date}' != '${amzDate.slice(0, 8)}'.`);
    }
    if (auth.service !== "kms") throw invalid(`Credential should be scoped to correct service: 'kms'.`);
    if (auth.region !== this.region) throw invalid(`Credential should be scoped to a valid region, not '${auth.region}'.`);
    if (auth.terminator !== "aws4_request") throw invalid("Credential should be scoped with a valid terminator: 'aws4_request'.");
    for (const h of REQUIRED_SIGNED) {
      if (!auth.signedHeaders.includes(h)) throw incomplete(`The header '${h}' must be present and signed.`);
    }
    for (const h of auth.signedHeaders) {
      if (header(req, h) === undefined) throw invalid(`Signed header '${h}' is missing from the request.`);
    }
    if (header(req, "x-amz-security-token") !== undefined) {
      throw new AwsProtocolError("UnrecognizedClientException", "Session tokens are not accepted by this service.");
    }
    const key = this.keys.get(auth.accessKeyId);
    if (!key) throw new AwsProtocolError("UnrecognizedClientException", "The security token included in the request is invalid.");

    // The signer hashes the body itself; a declared hash (which it would trust instead) must match it.
    const claimed = header(req, "x-amz-content-sha256");
    if (claimed !== undefined && claimed !== createHash("sha256").update(req.body).digest("hex")) {
      throw invalid("The x-amz-content-sha256 header does not match the body.");
    }

    const signedHeaders: Record<string, string> = {};
    for (const h of auth.signedHeaders) signedHeaders[h] = header(req, h)!;
    const expected = await this.signer(key).sign(
      new HttpRequest({
        method: req.method,
        protocol: "http:",
        hostname: signedHeaders.host!,
        path: req.path,
        headers: signedHeaders,
        body: req.body,
      }),
      { signingDate, signableHeaders: new Set(auth.signedHeaders) },
    );
    const computed = /Signature=([0-9a-f]{64})/.exec(String(expected.headers.authorization))?.[1] ?? "";
    if (!constantTimeEqualHex(computed, auth.signature)) {
      throw invalid(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
      );
    }
    return key;
  }

  /** One signer per access key: @smithy/signature-v4 caches the derived signing key per day inside it. */
  private signer(key: AccessKey): SignatureV4 {
    let s = this.signers.get(key.accessKeyId);
    if (!s) {
      s = new SignatureV4({
        credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
        region: this.region,
        service: "kms",
        sha256: Hash.bind(null, "sha256"),
        uriEscapePath: true,
        // Sign exactly what the client signed: by default the signer would add and sign an
        // x-amz-content-sha256 header that botocore (the AWS CLI) never sends.
        applyChecksum: false,
      });
      this.signers.set(key.accessKeyId, s);
    }
    return s;
  }
}

function parseAuthorization(value: string | undefined): ParsedAuthorization {
  if (!value) throw new AwsProtocolError("MissingAuthenticationTokenException", "Missing Authentication Token");
  const m = /^AWS4-HMAC-SHA256 (.*)$/.exec(value);
  if (!m) throw incomplete("Only the AWS4-HMAC-SHA256 signing algorithm is supported.");
  const parts = new Map<string, string>();
  for (const p of m[1]!.split(",")) {
    const eq = p.indexOf("=");
    if (eq > 0) parts.set(p.slice(0, eq).trim(), p.slice(eq + 1).trim());
  }
  const credential = parts.get("Credential");
  const signedHeaders = parts.get("SignedHeaders");
  const signature = parts.get("Signature");
  if (!credential || !signedHeaders || !signature) {
    throw incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.");
  }
  const scope = credential.split("/");
  if (scope.length !== 5 || scope.some((s) => s === "")) {
    throw incomplete("Credential must have the form <access key>/<date>/<region>/<service>/aws4_request.");
  }
  if (!/^[0-9a-f]{64}$/.test(signature)) throw incomplete("Signature must be 64 lower-case hexadecimal characters.");
  const [accessKeyId, date, region, service, terminator] = scope as [string, string, string, string, string];
  return { accessKeyId, date, region, service, terminator, signature, signedHeaders: signedHeaders.split(";").map((h) => h.toLowerCase()) };
}

function header(req: SignedRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

function parseAmzDate(s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw incomplete(`X-Amz-Date '${s}' is not in the form YYYYMMDD'T'HHMMSS'Z'.`);
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  if (Number.isNaN(d.getTime())) throw incomplete(`X-Amz-Date '${s}' is not a valid date.`);
  return d;
}

function formatAmzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

function constantTimeEqualHex(a: string, b: string): boolean {
  const x = Buffer.from(a, "utf8");
  const y = Buffer.from(b, "utf8");
  return x.length === y.length && timingSafeEqual(x, y);
}

function invalid(message: string): AwsProtocolError {
  return new AwsProtocolError("InvalidSignatureException", message);
}

function incomplete(message: string): AwsProtocolError {
  return new AwsProtocolError("IncompleteSignatureException", message);
}
