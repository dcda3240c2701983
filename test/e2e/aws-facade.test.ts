import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisabledException,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  type KMSClient,
  ListKeysCommand,
  NotFoundException,
  ReEncryptCommand,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kmsClient, rawCall } from "../helpers/aws.js";
import { type DaemonHandle, startDaemon } from "../helpers/daemon.js";

let d: DaemonHandle;
let kms: KMSClient;
let keyId: string;

beforeAll(async () => {
  d = await startDaemon();
  kms = kmsClient(d);
  keyId = (await kms.send(new CreateKeyCommand({ Description: "aws-sdk", Tags: [{ TagKey: "t", TagValue: "v" }] }))).KeyMetadata!.KeyId!;
});
afterAll(async () => {
  kms?.destroy();
  await d?.stop();
  d?.token.remove();
});

describe("@aws-sdk/client-kms against the facade", () => {
  it("runs every supported operation", async () => {
    const described = await kms.send(new DescribeKeyCommand({ KeyId: keyId }));
    expect(described.KeyMetadata).toMatchObject({ KeyId: keyId, KeyState: "Enabled", KeySpec: "SYMMETRIC_DEFAULT", Enabled: true, Description: "aws-sdk" });
    expect(described.KeyMetadata!.CreationDate).toBeInstanceOf(Date);
    expect(Math.abs(described.KeyMetadata!.CreationDate!.getTime() - Date.now())).toBeLessThan(60_000);

    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("sdk plaintext"), EncryptionContext: { app: "sdk" } }));
    const dec = await kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { app: "sdk" } }));
    expect(Buffer.from(dec.Plaintext!).toString()).toBe("sdk plaintext");
    expect(dec.KeyId).toBe(described.KeyMetadata!.Arn);

    const other = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    const re = await kms.send(new ReEncryptCommand({ CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: { app: "sdk" }, DestinationKeyId: other }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: re.CiphertextBlob }))).Plaintext!).toString()).toBe("sdk plaintext");

    const dk = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: "AES_256" }));
    expect(dk.Plaintext!.length).toBe(32);
    const dk2 = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: keyId, NumberOfBytes: 64 }));
    expect(Buffer.from((await kms.send(new DecryptCommand({ CiphertextBlob: dk2.CiphertextBlob }))).Plaintext!).length).toBe(64);
    expect((await kms.send(new GenerateRandomCommand({ NumberOfBytes: 17 }))).Plaintext!.length).toBe(17);

    const page = await kms.send(new ListKeysCommand({ Limit: 1 }));
    expect(page.Keys!.length).toBe(1);
    expect(page.Truncated).toBe(true);
    const rest = await kms.send(new ListKeysCommand({ Marker: page.NextMarker }));
    expect(rest.Keys!.map((k) => k.KeyId)).not.toContain(page.Keys![0]!.KeyId);
  });

  it("surfaces the service's errors as the SDK's typed exceptions", async () => {
    await expect(kms.send(new DescribeKeyCommand({ KeyId: "1d8f0a52-0000-4000-8000-000000000000" }))).rejects.toBeInstanceOf(NotFoundException);
    const enc = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from("x"), EncryptionContext: { a: "b" } }));
    await expect(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob }))).rejects.toBeInstanceOf(InvalidCiphertextException);
    const other = (await kms.send(new CreateKeyCommand({}))).KeyMetadata!.KeyId!;
    await expect(kms.send(new DecryptCommand({ CiphertextBlob: enc.CiphertextBlob, EncryptionContext: { a: "b" }, KeyId: other }))).rejects.toBeInstanceOf(IncorrectKeyException);
    const err = await kms.send(new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.alloc(4097) })).catch((e: Error & { $metadata: { httpStatusCode: number } }) => e);
    expect((err as Error).name).toBe("ValidationException");
    expect((err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(400);
    expect(DisabledException).toBeDefined();
  });
});

describe("the wire protocol", () => {
  it("puts x-amzn-RequestId on every response, success or failure", async () => {
    const ok = await rawCall(d, { body: JSON.stringify({ NumberOfBytes: 8 }) });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-amzn-requestid")).toMatch(/^[0-9a-f-]{36}$/);
    expect(ok.headers.get("content-type")).toBe("application/x-amz-json-1.1");
    const bad = await rawCall(d, { body: JSON.stringify({ NumberOfBytes: 0 }) });
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ __type: "ValidationException", message: expect.stringContaining("NumberOfBytes") });
    expect(bad.headers.get("x-amzn-requestid")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("answers unknown operations, malformed JSON, wrong types and unknown members by name", async () => {
    expect((await rawCall(d, { target: "TrentService.LaunchRockets" })).json.__type).toBe("UnknownOperationException");
    expect((await rawCall(d, { target: "TrentService.constructor" })).json.__type).toBe("UnknownOperationException");
    expect((await rawCall(d, { target: "" })).json.__type).toBe("IncompleteSignatureException"); // x-amz-target must be signed
    expect((await rawCall(d, { body: "{not json" })).json.__type).toBe("SerializationException");
    expect((await rawCall(d, { body: "[1,2]" })).json.__type).toBe("SerializationException");
    expect((await rawCall(d, { body: JSON.stringify({ NumberOfBytes: "8" }) })).json.__type).toBe("SerializationException");
    expect((await rawCall(d, { target: "TrentService.Encrypt", body: JSON.stringify({ KeyId: keyId, Plaintext: "!!notbase64" }) })).json.__type).toBe("SerializationException");
    const unknown = await rawCall(d, { body: JSON.stringify({ NumberOfBytes: 8, Surprise: true }) });
    expect(unknown.json).toEqual({ __type: "ValidationException", message: expect.stringContaining("Surprise") });
    expect((await rawCall(d, { target: "TrentService.CreateKey", body: JSON.stringify({ Policy: "{}" }) })).json).toMatchObject({ __type: "MalformedPolicyDocumentException", message: expect.stringMatching(/Statement is required/) });
    // Schemas built by extending another keep refusing unknown members.
    expect((await rawCall(d, { target: "TrentService.Verify", body: JSON.stringify({ Bogus: 1 }) })).json.__type).toBe("ValidationException");
  });

  it("refuses GET, other paths and oversized bodies clearly", async () => {
    const get = await fetch(d.awsEndpoint, { method: "GET" });
    expect(get.status).toBe(405);
    expect(((await get.json()) as { __type: string }).__type).toBe("UnknownOperationException");
    const path = await fetch(`${d.awsEndpoint}/keys`, { method: "POST", body: "{}" });
    expect(path.status).toBe(404);
    const big = await fetch(d.awsEndpoint, { method: "POST", body: "x".repeat(300 * 1024) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { __type: string }).__type).toBe("RequestEntityTooLargeException");
  });

  it("keeps a __proto__ member of the encryption context bound", async () => {
    const ctx = '{"__proto__":"x"}';
    const enc = await rawCall(d, { target: "TrentService.Encrypt", body: `{"KeyId":"${keyId}","Plaintext":"AQID","EncryptionContext":${ctx}}` });
    expect(enc.status).toBe(200);
    const blob = enc.json.CiphertextBlob as string;
    expect((await rawCall(d, { target: "TrentService.Decrypt", body: `{"CiphertextBlob":"${blob}","EncryptionContext":${ctx}}` })).status).toBe(200);
    expect((await rawCall(d, { target: "TrentService.Decrypt", body: `{"CiphertextBlob":"${blob}"}` })).json.__type).toBe("InvalidCiphertextException");
  });
});

describe("SigV4 authentication", () => {
  it("accepts a correctly signed request", async () => {
    expect((await rawCall(d, { body: '{"NumberOfBytes":4}' })).status).toBe(200);
  });
  it("refuses a missing signature", async () => {
    const r = await rawCall(d, { unsigned: true });
    expect(r.status).toBe(400);
    expect(r.json.__type).toBe("MissingAuthenticationTokenException");
  });
  it("refuses an unknown access key", async () => {
    expect((await rawCall(d, { accessKeyId: "AKIAUNKNOWNUNKNOWN00" })).json.__type).toBe("UnrecognizedClientException");
  });
  it("refuses a wrong secret", async () => {
    expect((await rawCall(d, { secretAccessKey: "wrong-secret-wrong-secret-wrong-secret00" })).json.__type).toBe("InvalidSignatureException");
  });
  it("refuses a stale or future date", async () => {
    expect((await rawCall(d, { signingDate: new Date(Date.now() - 6 * 60_000) })).json).toEqual({ __type: "InvalidSignatureException", message: expect.stringContaining("Signature expired") });
    expect((await rawCall(d, { signingDate: new Date(Date.now() + 6 * 60_000) })).json.__type).toBe("InvalidSignatureException");
  });
  it("refuses a body changed after signing", async () => {
    const r = await rawCall(d, { body: '{"NumberOfBytes":4}', afterSigning: (req) => (req.body = '{"NumberOfBytes":5}') });
    expect(r.json.__type).toBe("InvalidSignatureException");
  });
  it("refuses an operation swapped after signing", async () => {
    const r = await rawCall(d, { afterSigning: (req) => (req.headers["x-amz-target"] = "TrentService.ListKeys") });
    expect(r.json.__type).toBe("InvalidSignatureException");
  });
  it("refuses a signature scoped to another region or service", async () => {
    expect((await rawCall(d, { region: "eu-west-1" })).json.__type).toBe("InvalidSignatureException");
  });
  it("refuses a malformed Authorization header", async () => {
    const r = await rawCall(d, { afterSigning: (req) => (req.headers.authorization = "AWS4-HMAC-SHA256 Credential=AKIA/x") });
    expect(r.json.__type).toBe("IncompleteSignatureException");
  });
  it("never logs the secret", () => {
    expect(JSON.stringify(d.logs)).not.toContain(d.accessKey.secretAccessKey);
  });
});
