import { execFile } from "node:child_process";
import { constants, createHmac, createPublicKey, publicEncrypt } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreateKeyRequest,
  DecryptRequest,
  DescribeKeyRequest,
  GenerateDataKeyPairRequest,
  GenerateMacRequest,
  GetPublicKeyRequest,
  SignRequest,
  VerifyMacRequest,
  VerifyRequest,
  type KeyManagementServiceClient,
} from "../../src/gen/p11kms/v1/kms.js";
import { CLI, client, type DaemonHandle, rpc, rpcError, startDaemon } from "../helpers/daemon.js";
import { opensslVerify } from "../helpers/openssl.js";

const run = promisify(execFile);
let d: DaemonHandle;
let c: KeyManagementServiceClient;

beforeAll(async () => {
  d = await startDaemon();
  c = client(d.endpoint);
});
afterAll(async () => {
  c?.close();
  await d?.stop();
  d?.token.remove();
});

const create = async (keySpec: string, keyUsage: string) =>
  (await rpc(c, c.createKey, CreateKeyRequest.fromPartial({ keySpec, keyUsage }))).keyMetadata!;

async function cli(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  return run(process.execPath, [CLI, "--endpoint", d.endpoint, ...args]).then(
    (r) => ({ out: r.stdout, err: r.stderr, code: 0 }),
    (e: { stdout: string; stderr: string; code: number }) => ({ out: e.stdout, err: e.stderr, code: e.code }),
  );
}

describe("asymmetric and HMAC keys over gRPC", () => {
  it("signs with ECDSA P-256 and RSA-PSS; openssl verifies from GetPublicKey; Verify rejects tampering", async () => {
    for (const [spec, alg] of [["ECC_NIST_P256", "ECDSA_SHA_256"], ["RSA_2048", "RSASSA_PSS_SHA_256"], ["ECC_NIST_EDWARDS25519", "ED25519_SHA_512"]] as const) {
      const m = await create(spec, "SIGN_VERIFY");
      expect(m.signingAlgorithms).toContain(alg);
      expect(m.encryptionAlgorithms).toEqual([]);
      const message = Buffer.from(`signed over gRPC with ${alg}`);
      const sig = await rpc(c, c.sign, SignRequest.fromPartial({ keyId: m.keyId, message, signingAlgorithm: alg }));
      const pub = await rpc(c, c.getPublicKey, GetPublicKeyRequest.fromPartial({ keyId: m.arn }));
      expect(pub).toMatchObject({ keySpec: spec, customerMasterKeySpec: spec, keyUsage: "SIGN_VERIFY", keyId: m.arn });
      expect(opensslVerify(pub.publicKey, alg, message, sig.signature)).toBe(true);
      const ok = await rpc(c, c.verify, VerifyRequest.fromPartial({ keyId: m.keyId, message, signature: sig.signature, signingAlgorithm: alg }));
      expect(ok.signatureValid).toBe(true);
      const bad = Buffer.from(sig.signature);
      bad[bad.length - 2]! ^= 1;
      const e = await rpcError(c, c.verify, VerifyRequest.fromPartial({ keyId: m.keyId, message, signature: bad, signingAlgorithm: alg }));
      expect([e.code, e.type]).toEqual([status.INVALID_ARGUMENT, "KMSInvalidSignatureException"]);
    }
  });

  it("decrypts an RSA OAEP-SHA-256 ciphertext made by node:crypto; DescribeKey names the fallback path", async () => {
    const m = await create("RSA_2048", "ENCRYPT_DECRYPT");
    expect(m.rsaOaepSha256Decryption).toBe("fallback");
    const described = await rpc(c, c.describeKey, DescribeKeyRequest.fromPartial({ keyId: m.keyId }));
    expect(described.keyMetadata!.rsaOaepSha256Decryption).toBe("fallback");
    const pub = await rpc(c, c.getPublicKey, GetPublicKeyRequest.fromPartial({ keyId: m.keyId }));
    const key = createPublicKey({ key: pub.publicKey, format: "der", type: "spki" });
    const ct = publicEncrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" }, Buffer.from("over the wire"));
    const res = await rpc(c, c.decrypt, DecryptRequest.fromPartial({ ciphertextBlob: ct, keyId: m.keyId, encryptionAlgorithm: "RSAES_OAEP_SHA_256" }));
    expect(res.plaintext.toString()).toBe("over the wire");
    expect(res.encryptionAlgorithm).toBe("RSAES_OAEP_SHA_256");
  });

  it("HMAC: GenerateMac / VerifyMac, and KMSInvalidMacException for a wrong MAC", async () => {
    const m = await create("HMAC_384", "GENERATE_VERIFY_MAC");
    expect(m.macAlgorithms).toEqual(["HMAC_SHA_384"]);
    const message = Buffer.from("mac over gRPC");
    const mac = await rpc(c, c.generateMac, GenerateMacRequest.fromPartial({ keyId: m.keyId, message, macAlgorithm: "HMAC_SHA_384" }));
    expect(mac.mac.length).toBe(48);
    expect((await rpc(c, c.verifyMac, VerifyMacRequest.fromPartial({ keyId: m.keyId, message, mac: mac.mac, macAlgorithm: "HMAC_SHA_384" }))).macValid).toBe(true);
    const e = await rpcError(c, c.verifyMac, VerifyMacRequest.fromPartial({ keyId: m.keyId, message, mac: Buffer.alloc(48), macAlgorithm: "HMAC_SHA_384" }));
    expect([e.code, e.type]).toEqual([status.INVALID_ARGUMENT, "KMSInvalidMacException"]);
  });

  it("GenerateDataKeyPair returns PKCS#8 + SPKI and a blob that Decrypt opens", async () => {
    const aes = await create("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    const res = await rpc(c, c.generateDataKeyPair, GenerateDataKeyPairRequest.fromPartial({ keyId: aes.keyId, keyPairSpec: "ECC_NIST_P384", encryptionContext: new Map([["k", "v"]]) }));
    expect(res.keyPairSpec).toBe("ECC_NIST_P384");
    const opened = await rpc(c, c.decrypt, DecryptRequest.fromPartial({ ciphertextBlob: res.privateKeyCiphertextBlob, encryptionContext: new Map([["k", "v"]]) }));
    expect(opened.plaintext.equals(res.privateKeyPlaintext)).toBe(true);
    expect(createPublicKey({ key: res.publicKey, format: "der", type: "spki" }).asymmetricKeyDetails).toEqual({ namedCurve: "secp384r1" });
  });

  it("answers wrong usage, wrong algorithm and bad lengths with the AWS errors", async () => {
    const ec = await create("ECC_NIST_P256", "SIGN_VERIFY");
    const cases: [Promise<{ code: number; type: string | undefined }>, string][] = [
      [rpcError(c, c.sign, SignRequest.fromPartial({ keyId: ec.keyId, message: Buffer.alloc(31), messageType: "DIGEST", signingAlgorithm: "ECDSA_SHA_256" })), "ValidationException"],
      [rpcError(c, c.sign, SignRequest.fromPartial({ keyId: ec.keyId, message: Buffer.alloc(4097), signingAlgorithm: "ECDSA_SHA_256" })), "ValidationException"],
      [rpcError(c, c.sign, SignRequest.fromPartial({ keyId: ec.keyId, message: Buffer.from("x"), signingAlgorithm: "RSASSA_PSS_SHA_256" })), "InvalidKeyUsageException"],
      [rpcError(c, c.generateMac, GenerateMacRequest.fromPartial({ keyId: ec.keyId, message: Buffer.from("x"), macAlgorithm: "HMAC_SHA_256" })), "InvalidKeyUsageException"],
      [rpcError(c, c.getPublicKey, GetPublicKeyRequest.fromPartial({ keyId: (await create("HMAC_256", "GENERATE_VERIFY_MAC")).keyId })), "UnsupportedOperationException"],
    ];
    for (const [p, type] of cases) expect((await p).type).toBe(type);
  });
});

describe("CLI commands, in the AWS CLI's shapes", () => {
  it("sign / verify / get-public-key: the signature verifies with openssl from the CLI's public key", async () => {
    const keyId = JSON.parse((await cli("create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY")).out).KeyMetadata.KeyId as string;
    const described = JSON.parse((await cli("describe-key", "--key-id", keyId)).out).KeyMetadata;
    expect(described.SigningAlgorithms).toEqual(["ECDSA_SHA_256"]);
    expect(described.EncryptionAlgorithms).toBeUndefined();
    const msgFile = join(d.token.dir, "msg.txt");
    writeFileSync(msgFile, "sign me from the CLI\n");
    const signed = JSON.parse((await cli("sign", "--key-id", keyId, "--message", `fileb://${msgFile}`, "--signing-algorithm", "ECDSA_SHA_256")).out);
    expect(Object.keys(signed).sort()).toEqual(["KeyId", "Signature", "SigningAlgorithm"]);
    const pub = JSON.parse((await cli("get-public-key", "--key-id", keyId)).out);
    expect(pub).toMatchObject({ KeySpec: "ECC_NIST_P256", CustomerMasterKeySpec: "ECC_NIST_P256", KeyUsage: "SIGN_VERIFY", SigningAlgorithms: ["ECDSA_SHA_256"] });
    expect(opensslVerify(Buffer.from(pub.PublicKey, "base64"), "ECDSA_SHA_256", Buffer.from("sign me from the CLI\n"), Buffer.from(signed.Signature, "base64"))).toBe(true);
    const sigFile = join(d.token.dir, "sig.bin");
    writeFileSync(sigFile, Buffer.from(signed.Signature, "base64"));
    const verified = await cli("verify", "--key-id", keyId, "--message", `fileb://${msgFile}`, "--signature", `fileb://${sigFile}`, "--signing-algorithm", "ECDSA_SHA_256");
    expect(JSON.parse(verified.out)).toMatchObject({ SignatureValid: true, SigningAlgorithm: "ECDSA_SHA_256" });
    writeFileSync(msgFile, "sign me from the CLI?\n");
    const rejected = await cli("verify", "--key-id", keyId, "--message", `fileb://${msgFile}`, "--signature", `fileb://${sigFile}`, "--signing-algorithm", "ECDSA_SHA_256");
    expect(rejected.code).toBe(254);
    expect(rejected.err).toContain("An error occurred (KMSInvalidSignatureException) when calling the Verify operation");
  });

  it("generate-mac / verify-mac / generate-data-key-pair(-without-plaintext)", async () => {
    const hmac = JSON.parse((await cli("create-key", "--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC")).out).KeyMetadata;
    expect(hmac.MacAlgorithms).toEqual(["HMAC_SHA_256"]);
    const msg = Buffer.from("cli mac").toString("base64");
    const mac = JSON.parse((await cli("generate-mac", "--key-id", hmac.KeyId, "--message", msg, "--mac-algorithm", "HMAC_SHA_256")).out);
    expect(Object.keys(mac).sort()).toEqual(["KeyId", "Mac", "MacAlgorithm"]);
    const ok = JSON.parse((await cli("verify-mac", "--key-id", hmac.KeyId, "--message", msg, "--mac-algorithm", "HMAC_SHA_256", "--mac", mac.Mac)).out);
    expect(ok).toMatchObject({ MacValid: true, MacAlgorithm: "HMAC_SHA_256" });
    const wrong = createHmac("sha256", "not the key").update("cli mac").digest("base64");
    const bad = await cli("verify-mac", "--key-id", hmac.KeyId, "--message", msg, "--mac-algorithm", "HMAC_SHA_256", "--mac", wrong);
    expect([bad.code, bad.err.includes("(KMSInvalidMacException)")]).toEqual([254, true]);

    const aes = JSON.parse((await cli("create-key")).out).KeyMetadata.KeyId as string;
    const pair = JSON.parse((await cli("generate-data-key-pair", "--key-id", aes, "--key-pair-spec", "RSA_2048", "--encryption-context", "app=cli")).out);
    expect(Object.keys(pair).sort()).toEqual(["KeyId", "KeyPairSpec", "PrivateKeyCiphertextBlob", "PrivateKeyPlaintext", "PublicKey"]);
    const blob = join(d.token.dir, "pair.bin");
    writeFileSync(blob, Buffer.from(pair.PrivateKeyCiphertextBlob, "base64"));
    const opened = await cli("decrypt", "--ciphertext-blob", `fileb://${blob}`, "--encryption-context", "app=cli", "--query", "Plaintext", "--output", "text");
    expect(opened.out.trim()).toBe(pair.PrivateKeyPlaintext);
    const np = JSON.parse((await cli("generate-data-key-pair-without-plaintext", "--key-id", aes, "--key-pair-spec", "ECC_NIST_P256")).out);
    expect(Object.keys(np).sort()).toEqual(["KeyId", "KeyPairSpec", "PrivateKeyCiphertextBlob", "PublicKey"]);
    expect((await cli("sign", "--key-id", aes, "--message", msg)).code).toBe(252); // --signing-algorithm is required
  });
});

describe("logs", () => {
  it("never contain messages to sign, MAC inputs or private keys", async () => {
    const marker = "SECRET-MESSAGE-TO-SIGN-MARKER";
    const ec = await create("ECC_NIST_P256", "SIGN_VERIFY");
    await rpc(c, c.sign, SignRequest.fromPartial({ keyId: ec.keyId, message: Buffer.from(marker), signingAlgorithm: "ECDSA_SHA_256" }));
    await rpcError(c, c.verify, VerifyRequest.fromPartial({ keyId: ec.keyId, message: Buffer.from(marker), signature: Buffer.alloc(70, 1), signingAlgorithm: "ECDSA_SHA_256" }));
    const aes = await create("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT");
    const pair = await rpc(c, c.generateDataKeyPair, GenerateDataKeyPairRequest.fromPartial({ keyId: aes.keyId, keyPairSpec: "ECC_NIST_P256" }));
    const all = JSON.stringify(d.logs);
    for (const needle of [marker, Buffer.from(marker).toString("base64"), pair.privateKeyPlaintext.toString("base64"), pair.privateKeyPlaintext.toString("hex")]) {
      expect(all).not.toContain(needle);
    }
  });
});
