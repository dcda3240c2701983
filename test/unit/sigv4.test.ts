import { describe, expect, it } from "vitest";
import { SigV4Verifier } from "../../src/api/aws/sigv4.js";

// A request exactly as the AWS CLI v2 (botocore) sent it, captured on the wire, with a throw-away key.
// botocore signs content-type;host;x-amz-date;x-amz-target and sends no x-amz-content-sha256.
const SECRET = "abcdefghijabcdefghijabcdefghij";
const AKID = "AKIAAAAAAAAAAAAAAAAA";
const CAPTURED = {
  host: "127.0.0.1:45999",
  "accept-encoding": "identity",
  "x-amz-target": "TrentService.ListKeys",
  "content-type": "application/x-amz-json-1.1",
  "user-agent": "aws-cli/2.9.19 Python/3.11.2",
  "x-amz-date": "20261123T110724Z",
  authorization:
    "AWS4-HMAC-SHA256 Credential=AKIAAAAAAAAAAAAAAAAA/20261123/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=ab301b98f544ad0c7105d2da438fde1167eb0865ab76f535461682acf7d7cdd2",
  "content-length": "2",
};
const SIGNED_AT = new Date(Date.UTC(2026, 10, 23, 11, 7, 24));
const keys = new Map([[AKID, { accessKeyId: AKID, secretAccessKey: SECRET, principal: "arn:aws:iam::111122223333:user/dev" }]]);

function verify(headers: Record<string, string>, body = "{}", now = SIGNED_AT, region = "us-east-1") {
  return new SigV4Verifier(keys, region, () => now).verify({ method: "POST", path: "/", headers, body: Buffer.from(body) });
}
const typeOf = (p: Promise<unknown>) => p.then(() => "ok", (e: { type?: string }) => e.type);

describe("SigV4Verifier", () => {
  it("accepts the AWS CLI's request and names its principal", async () => {
    expect((await verify(CAPTURED)).principal).toBe("arn:aws:iam::111122223333:user/dev");
  });
  it("accepts it up to 5 minutes either side, not beyond", async () => {
    expect(await typeOf(verify(CAPTURED, "{}", new Date(SIGNED_AT.getTime() + 299_000)))).toBe("ok");
    expect(await typeOf(verify(CAPTURED, "{}", new Date(SIGNED_AT.getTime() - 299_000)))).toBe("ok");
    expect(await typeOf(verify(CAPTURED, "{}", new Date(SIGNED_AT.getTime() + 301_000)))).toBe("InvalidSignatureException");
    expect(await typeOf(verify(CAPTURED, "{}", new Date(SIGNED_AT.getTime() - 301_000)))).toBe("InvalidSignatureException");
  });
  it("rejects any change to a signed part", async () => {
    expect(await typeOf(verify(CAPTURED, "{ }"))).toBe("InvalidSignatureException");
    expect(await typeOf(verify({ ...CAPTURED, "x-amz-target": "TrentService.Decrypt" }))).toBe("InvalidSignatureException");
    expect(await typeOf(verify({ ...CAPTURED, host: "127.0.0.1:46000" }))).toBe("InvalidSignatureException");
    expect(await typeOf(verify({ ...CAPTURED, authorization: CAPTURED.authorization.replace("Signature=ab", "Signature=ac") }))).toBe("InvalidSignatureException");
  });
  it("ignores unsigned headers", async () => {
    expect(await typeOf(verify({ ...CAPTURED, "user-agent": "something else", "accept-encoding": "gzip" }))).toBe("ok");
  });
  it("checks the credential scope", async () => {
    expect(await typeOf(verify(CAPTURED, "{}", SIGNED_AT, "eu-west-1"))).toBe("InvalidSignatureException");
    const wrongDate = { ...CAPTURED, "x-amz-date": "20261124T110724Z" };
    expect(await typeOf(verify(wrongDate, "{}", new Date(Date.UTC(2026, 10, 24, 11, 7, 24))))).toBe("InvalidSignatureException");
  });
  it("names what is missing or malformed", async () => {
    const { authorization: _a, ...noAuth } = CAPTURED;
    expect(await typeOf(verify(noAuth))).toBe("MissingAuthenticationTokenException");
    const { "x-amz-date": _d, ...noDate } = CAPTURED;
    expect(await typeOf(verify(noDate))).toBe("IncompleteSignatureException");
    expect(await typeOf(verify({ ...CAPTURED, authorization: "AWS4-HMAC-SHA1 Credential=x" }))).toBe("IncompleteSignatureException");
    expect(await typeOf(verify({ ...CAPTURED, authorization: CAPTURED.authorization.replace(";x-amz-target", "") }))).toBe("IncompleteSignatureException");
    expect(await typeOf(verify({ ...CAPTURED, "x-amz-date": "2026-11-23T11:07:24Z" }))).toBe("IncompleteSignatureException");
  });
  it("refuses unknown keys, session tokens and a body that contradicts its declared hash", async () => {
    expect(await typeOf(verify({ ...CAPTURED, authorization: CAPTURED.authorization.replace(AKID, "AKIABBBBBBBBBBBBBBBB") }))).toBe("UnrecognizedClientException");
    expect(await typeOf(verify({ ...CAPTURED, "x-amz-security-token": "token" }))).toBe("UnrecognizedClientException");
    expect(await typeOf(verify({ ...CAPTURED, "x-amz-content-sha256": "0".repeat(64) }))).toBe("InvalidSignatureException");
  });
});
