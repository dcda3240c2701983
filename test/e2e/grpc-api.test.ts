import { join } from "node:path";
import { credentials, loadPackageDefinition, status } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { protoPath as healthProto } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreateKeyRequest,
  DecryptRequest,
  DescribeKeyRequest,
  EncryptRequest,
  GenerateDataKeyRequest,
  GenerateDataKeyWithoutPlaintextRequest,
  GenerateRandomRequest,
  ListKeysRequest,
  ReEncryptRequest,
  type KeyManagementServiceClient,
} from "../../src/gen/p11kms/v1/kms.js";
import { client, type DaemonHandle, REPO, rpc, rpcError, startDaemon } from "../helpers/daemon.js";

let d: DaemonHandle;
let c: KeyManagementServiceClient;
let keyId: string;

beforeAll(async () => {
  d = await startDaemon();
  c = client(d.endpoint);
  keyId = (await rpc(c, c.createKey, CreateKeyRequest.fromPartial({ description: "e2e" }))).keyMetadata!.keyId;
});
afterAll(async () => {
  c?.close();
  await d?.stop();
  d?.token.remove();
});

const enc = (r: Partial<EncryptRequest>) => EncryptRequest.fromPartial({ keyId, ...r });
const dec = (r: Partial<DecryptRequest>) => DecryptRequest.fromPartial(r);

describe("gRPC API round trips", () => {
  it("creates and describes a key", async () => {
    const res = await rpc(c, c.createKey, CreateKeyRequest.fromPartial({ description: "x", tags: [{ tagKey: "a", tagValue: "b" }] }));
    const m = res.keyMetadata!;
    expect(m.keyState).toBe("Enabled");
    expect(m.arn).toBe(`arn:aws:kms:us-east-1:111122223333:key/${m.keyId}`);
    expect(m.creationDate).toBeInstanceOf(Date);
    const again = await rpc(c, c.describeKey, DescribeKeyRequest.fromPartial({ keyId: m.arn }));
    expect(again.keyMetadata).toEqual(m);
  });

  it("encrypts, decrypts, re-encrypts and generates data keys", async () => {
    const e = await rpc(c, c.encrypt, enc({ plaintext: Buffer.from("hello"), encryptionContext: new Map([["k", "v"]]) }));
    const p = await rpc(c, c.decrypt, dec({ ciphertextBlob: e.ciphertextBlob, encryptionContext: new Map([["k", "v"]]) }));
    expect(p.plaintext.toString()).toBe("hello");
    expect(p.keyId).toBe(e.keyId);
    const other = (await rpc(c, c.createKey, CreateKeyRequest.fromPartial({}))).keyMetadata!.keyId;
    const re = await rpc(c, c.reEncrypt, ReEncryptRequest.fromPartial({ ciphertextBlob: e.ciphertextBlob, sourceEncryptionContext: new Map([["k", "v"]]), destinationKeyId: other }));
    expect((await rpc(c, c.decrypt, dec({ ciphertextBlob: re.ciphertextBlob }))).plaintext.toString()).toBe("hello");
    const dk = await rpc(c, c.generateDataKey, GenerateDataKeyRequest.fromPartial({ keyId, keySpec: "AES_256" }));
    expect(dk.plaintext.length).toBe(32);
    expect((await rpc(c, c.decrypt, dec({ ciphertextBlob: dk.ciphertextBlob }))).plaintext.equals(dk.plaintext)).toBe(true);
    const np = await rpc(c, c.generateDataKeyWithoutPlaintext, GenerateDataKeyWithoutPlaintextRequest.fromPartial({ keyId, numberOfBytes: 48 }));
    expect((await rpc(c, c.decrypt, dec({ ciphertextBlob: np.ciphertextBlob }))).plaintext.length).toBe(48);
    expect((await rpc(c, c.generateRandom, GenerateRandomRequest.fromPartial({ numberOfBytes: 100 }))).plaintext.length).toBe(100);
  });

  it("binds every context key, even one named __proto__", async () => {
    const ctx = new Map([["__proto__", "x"], ["constructor", "y"]]);
    const e = await rpc(c, c.encrypt, enc({ plaintext: Buffer.from("p"), encryptionContext: ctx }));
    expect((await rpc(c, c.decrypt, dec({ ciphertextBlob: e.ciphertextBlob, encryptionContext: ctx }))).plaintext.toString()).toBe("p");
    const e2 = await rpcError(c, c.decrypt, dec({ ciphertextBlob: e.ciphertextBlob }));
    expect(e2.type).toBe("InvalidCiphertextException");
  });

  it("lists keys page by page", async () => {
    const first = await rpc(c, c.listKeys, ListKeysRequest.fromPartial({ limit: 1 }));
    expect(first.keys.length).toBe(1);
    expect(first.truncated).toBe(true);
    const second = await rpc(c, c.listKeys, ListKeysRequest.fromPartial({ limit: 1, marker: first.nextMarker }));
    expect(second.keys[0]!.keyId).not.toBe(first.keys[0]!.keyId);
  });
});

describe("bad input always gets the named error", () => {
  const cases: [string, () => Promise<{ code: number; type: string | undefined }>, number, string][] = [
    ["empty plaintext", () => rpcError(c, c.encrypt, enc({ plaintext: Buffer.alloc(0) })), status.INVALID_ARGUMENT, "ValidationException"],
    ["4097-byte plaintext", () => rpcError(c, c.encrypt, enc({ plaintext: Buffer.alloc(4097) })), status.INVALID_ARGUMENT, "ValidationException"],
    ["missing key id", () => rpcError(c, c.encrypt, enc({ keyId: "", plaintext: Buffer.from("x") })), status.INVALID_ARGUMENT, "ValidationException"],
    ["unknown key", () => rpcError(c, c.encrypt, enc({ keyId: "7b6b1f38-5b8e-4c4b-9b1a-000000000000", plaintext: Buffer.from("x") })), status.NOT_FOUND, "NotFoundException"],
    ["malformed key id", () => rpcError(c, c.describeKey, DescribeKeyRequest.fromPartial({ keyId: "not-a-key" })), status.NOT_FOUND, "NotFoundException"],
    ["2049-char key id", () => rpcError(c, c.describeKey, DescribeKeyRequest.fromPartial({ keyId: "k".repeat(2049) })), status.INVALID_ARGUMENT, "ValidationException"],
    ["empty blob", () => rpcError(c, c.decrypt, dec({})), status.INVALID_ARGUMENT, "ValidationException"],
    ["6145-byte blob", () => rpcError(c, c.decrypt, dec({ ciphertextBlob: Buffer.alloc(6145, 1) })), status.INVALID_ARGUMENT, "ValidationException"],
    ["garbage blob", () => rpcError(c, c.decrypt, dec({ ciphertextBlob: Buffer.from("this is not a ciphertext at all, really not") })), status.INVALID_ARGUMENT, "InvalidCiphertextException"],
    ["unknown encryption algorithm", () => rpcError(c, c.encrypt, enc({ plaintext: Buffer.from("x"), encryptionAlgorithm: "AES_CTR" })), status.INVALID_ARGUMENT, "ValidationException"],
    ["RSA algorithm on a symmetric key", () => rpcError(c, c.encrypt, enc({ plaintext: Buffer.from("x"), encryptionAlgorithm: "RSAES_OAEP_SHA_1" })), status.INVALID_ARGUMENT, "InvalidKeyUsageException"],
    ["oversized encryption context", () => rpcError(c, c.encrypt, enc({ plaintext: Buffer.from("x"), encryptionContext: new Map([["k", "v".repeat(8200)]]) })), status.INVALID_ARGUMENT, "ValidationException"],
    ["both KeySpec and NumberOfBytes", () => rpcError(c, c.generateDataKey, GenerateDataKeyRequest.fromPartial({ keyId, keySpec: "AES_256", numberOfBytes: 32 })), status.INVALID_ARGUMENT, "ValidationException"],
    ["neither KeySpec nor NumberOfBytes", () => rpcError(c, c.generateDataKey, GenerateDataKeyRequest.fromPartial({ keyId })), status.INVALID_ARGUMENT, "ValidationException"],
    ["1025 data key bytes", () => rpcError(c, c.generateDataKey, GenerateDataKeyRequest.fromPartial({ keyId, numberOfBytes: 1025 })), status.INVALID_ARGUMENT, "ValidationException"],
    ["0 random bytes", () => rpcError(c, c.generateRandom, GenerateRandomRequest.fromPartial({ numberOfBytes: 0 })), status.INVALID_ARGUMENT, "ValidationException"],
    ["1025 random bytes", () => rpcError(c, c.generateRandom, GenerateRandomRequest.fromPartial({ numberOfBytes: 1025 })), status.INVALID_ARGUMENT, "ValidationException"],
    ["ListKeys limit 0", () => rpcError(c, c.listKeys, ListKeysRequest.fromPartial({ limit: 0 })), status.INVALID_ARGUMENT, "ValidationException"],
    ["forged marker", () => rpcError(c, c.listKeys, ListKeysRequest.fromPartial({ marker: "abc" })), status.INVALID_ARGUMENT, "InvalidMarkerException"],
    ["unknown key spec", () => rpcError(c, c.createKey, CreateKeyRequest.fromPartial({ keySpec: "AES_256" })), status.INVALID_ARGUMENT, "ValidationException"],
    ["key spec without device support (SM2)", () => rpcError(c, c.createKey, CreateKeyRequest.fromPartial({ keySpec: "SM2", keyUsage: "SIGN_VERIFY" })), status.UNIMPLEMENTED, "UnsupportedOperationException"],
    ["51 tags", () => rpcError(c, c.createKey, CreateKeyRequest.fromPartial({ tags: Array.from({ length: 51 }, (_, i) => ({ tagKey: `k${i}`, tagValue: "" })) })), status.INVALID_ARGUMENT, "TagException"],
  ];
  for (const [name, call, grpcCode, type] of cases) {
    it(`${name} → ${type}`, async () => {
      const e = await call();
      expect(e.type).toBe(type);
      expect(e.code).toBe(grpcCode);
    });
  }

  it("rejects a message larger than the configured maximum without crashing", async () => {
    const e = await rpcError(c, c.encrypt, enc({ plaintext: Buffer.alloc(2 * 1024 * 1024) }));
    expect(e.code).toBe(status.RESOURCE_EXHAUSTED);
    expect((await rpc(c, c.generateRandom, GenerateRandomRequest.fromPartial({ numberOfBytes: 1 }))).plaintext.length).toBe(1);
  });
});

describe("tampering", () => {
  it("answers InvalidCiphertextException for every flipped byte, truncation and extension", async () => {
    const ctx = new Map([["purpose", "tamper-test"]]);
    const { ciphertextBlob } = await rpc(c, c.encrypt, enc({ plaintext: Buffer.from("sixteen byte msg"), encryptionContext: ctx }));
    const variants: Buffer[] = [];
    for (let i = 0; i < ciphertextBlob.length; i++) {
      const b = Buffer.from(ciphertextBlob);
      b[i]! ^= 0x01;
      variants.push(b);
    }
    for (let n = 1; n < ciphertextBlob.length; n += 7) variants.push(ciphertextBlob.subarray(0, n));
    variants.push(Buffer.concat([ciphertextBlob, Buffer.from([0])]));
    const results = await Promise.all(
      variants.map((blob) => rpcError(c, c.decrypt, dec({ ciphertextBlob: blob, encryptionContext: ctx }))),
    );
    for (const [i, r] of results.entries()) expect({ i, type: r.type }).toEqual({ i, type: "InvalidCiphertextException" });
    expect((await rpc(c, c.decrypt, dec({ ciphertextBlob, encryptionContext: ctx }))).plaintext.toString()).toBe("sixteen byte msg");
  });
});

describe("health and reflection", () => {
  it("reports SERVING on grpc.health.v1", async () => {
    const pkg = loadPackageDefinition(loadSync(healthProto, { enums: String })) as unknown as {
      grpc: { health: { v1: { Health: new (a: string, c: unknown) => { check: (r: object, cb: (e: unknown, r: { status: string }) => void) => void; close(): void } } } };
    };
    const h = new pkg.grpc.health.v1.Health(d.endpoint, credentials.createInsecure());
    for (const service of ["", "p11kms.v1.KeyManagementService"]) {
      const res = await new Promise<{ status: string }>((ok, ko) => h.check({ service }, (e, r) => (e ? ko(e) : ok(r))));
      expect(res.status).toBe("SERVING");
    }
    h.close();
  });

  it("lists the KMS service through server reflection (what grpcurl uses)", async () => {
    // Served from the start: the daemon loads reflection while its key stores open, before it listens.
    expect(d.logs.some((l) => l.msg === "gRPC server reflection unavailable")).toBe(false);
    const protoFile = join(REPO, "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1alpha/reflection.proto");
    const pkg = loadPackageDefinition(loadSync(protoFile)) as unknown as {
      grpc: { reflection: { v1alpha: { ServerReflection: new (a: string, c: unknown) => { serverReflectionInfo(): NodeJS.ReadWriteStream & { write(m: object): void; end(): void }; close(): void } } } };
    };
    const r = new pkg.grpc.reflection.v1alpha.ServerReflection(d.endpoint, credentials.createInsecure());
    const stream = r.serverReflectionInfo();
    const names = await new Promise<string[]>((ok, ko) => {
      stream.on("data", (m: { listServicesResponse?: { service: { name: string }[] } }) => ok(m.listServicesResponse!.service.map((s) => s.name)));
      stream.on("error", ko);
      stream.write({ listServices: "" });
    });
    stream.end();
    r.close();
    expect(names).toContain("p11kms.v1.KeyManagementService");
    expect(names).toContain("grpc.health.v1.Health");
  });
});

describe("logs", () => {
  it("never contain plaintext, data keys or the PIN", async () => {
    const marker = "TOP-SECRET-PLAINTEXT-MARKER";
    const e = await rpc(c, c.encrypt, enc({ plaintext: Buffer.from(marker) }));
    await rpcError(c, c.decrypt, dec({ ciphertextBlob: e.ciphertextBlob, encryptionContext: new Map([["wrong", "ctx"]]) }));
    const dk = await rpc(c, c.generateDataKey, GenerateDataKeyRequest.fromPartial({ keyId, numberOfBytes: 32 }));
    const all = JSON.stringify(d.logs);
    expect(all).not.toContain(marker);
    expect(all).not.toContain(Buffer.from(marker).toString("base64"));
    expect(all).not.toContain(dk.plaintext.toString("base64"));
    expect(all).not.toContain(dk.plaintext.toString("hex"));
    expect(all).not.toContain(d.token.pin);
  });
});
