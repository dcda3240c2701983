import { constants, createPrivateKey, createPublicKey, publicEncrypt, createHmac, verify as nodeVerify } from "node:crypto";
import {
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  GenerateDataKeyPairCommand,
  GenerateDataKeyPairWithoutPlaintextCommand,
  GenerateMacCommand,
  GetPublicKeyCommand,
  type KMSClient,
  KMSInvalidMacException,
  KMSInvalidSignatureException,
  SignCommand,
  VerifyCommand,
  VerifyMacCommand,
} from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kmsClient } from "../helpers/aws.js";
import { type DaemonHandle, startDaemon } from "../helpers/daemon.js";

let d: DaemonHandle;
let kms: KMSClient;

beforeAll(async () => {
  d = await startDaemon();
  kms = kmsClient(d);
});
afterAll(async () => {
  kms?.destroy();
  await d?.stop();
  d?.token.remove();
});

const create = async (KeySpec: string, KeyUsage: string) =>
  (await kms.send(new CreateKeyCommand({ KeySpec: KeySpec as never, KeyUsage: KeyUsage as never }))).KeyMetadata!;

describe("asymmetric and HMAC operations through the AWS SDK", () => {
  it("signs with ECDSA P-256 on the device; node:crypto verifies with GetPublicKey's key", async () => {
    const meta = await create("ECC_NIST_P256", "SIGN_VERIFY");
    expect(meta.SigningAlgorithms).toEqual(["ECDSA_SHA_256"]);
    expect(meta.EncryptionAlgorithms).toBeUndefined();
    const pub = await kms.send(new GetPublicKeyCommand({ KeyId: meta.KeyId }));
    expect(pub.KeySpec).toBe("ECC_NIST_P256");
    const key = createPublicKey({ key: Buffer.from(pub.PublicKey!), format: "der", type: "spki" });
    const message = Buffer.from("sign me through the AWS facade");
    const sig = await kms.send(new SignCommand({ KeyId: meta.KeyId, Message: message, MessageType: "RAW", SigningAlgorithm: "ECDSA_SHA_256" }));
    expect(nodeVerify("sha256", message, key, Buffer.from(sig.Signature!))).toBe(true);
    const ok = await kms.send(new VerifyCommand({ KeyId: meta.KeyId, Message: message, Signature: sig.Signature, SigningAlgorithm: "ECDSA_SHA_256" }));
    expect(ok.SignatureValid).toBe(true);
    const bad = Buffer.from(sig.Signature!);
    bad[bad.length - 1]! ^= 1;
    await expect(kms.send(new VerifyCommand({ KeyId: meta.KeyId, Message: message, Signature: bad, SigningAlgorithm: "ECDSA_SHA_256" }))).rejects.toBeInstanceOf(KMSInvalidSignatureException);
  });

  it("generates and verifies HMACs matching node:crypto", async () => {
    const meta = await create("HMAC_256", "GENERATE_VERIFY_MAC");
    expect((await kms.send(new DescribeKeyCommand({ KeyId: meta.KeyId }))).KeyMetadata!.MacAlgorithms).toEqual(["HMAC_SHA_256"]);
    const message = Buffer.from("mac me");
    const mac = await kms.send(new GenerateMacCommand({ KeyId: meta.KeyId, Message: message, MacAlgorithm: "HMAC_SHA_256" }));
    expect(mac.Mac!.length).toBe(32);
    expect((await kms.send(new VerifyMacCommand({ KeyId: meta.KeyId, Message: message, Mac: mac.Mac, MacAlgorithm: "HMAC_SHA_256" }))).MacValid).toBe(true);
    const wrong = createHmac("sha256", "not the key").update(message).digest();
    await expect(kms.send(new VerifyMacCommand({ KeyId: meta.KeyId, Message: message, Mac: wrong, MacAlgorithm: "HMAC_SHA_256" }))).rejects.toBeInstanceOf(KMSInvalidMacException);
  });

  it("decrypts RSA-OAEP ciphertexts made by node:crypto with the public key", async () => {
    const meta = await create("RSA_2048", "ENCRYPT_DECRYPT");
    const pub = createPublicKey({ key: Buffer.from((await kms.send(new GetPublicKeyCommand({ KeyId: meta.KeyId }))).PublicKey!), format: "der", type: "spki" });
    for (const [alg, hash] of [["RSAES_OAEP_SHA_1", "sha1"], ["RSAES_OAEP_SHA_256", "sha256"]] as const) {
      const ct = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, Buffer.from(`via ${alg}`));
      const res = await kms.send(new DecryptCommand({ KeyId: meta.KeyId, CiphertextBlob: ct, EncryptionAlgorithm: alg }));
      expect(Buffer.from(res.Plaintext!).toString()).toBe(`via ${alg}`);
    }
  });

  it("generates data key pairs whose private half is sealed under a symmetric key", async () => {
    const sym = (await create("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")).KeyId!;
    const pair = await kms.send(new GenerateDataKeyPairCommand({ KeyId: sym, KeyPairSpec: "ECC_NIST_P256", EncryptionContext: { use: "pair" } }));
    const priv = createPrivateKey({ key: Buffer.from(pair.PrivateKeyPlaintext!), format: "der", type: "pkcs8" });
    expect(createPublicKey(priv).export({ format: "der", type: "spki" }).equals(Buffer.from(pair.PublicKey!))).toBe(true);
    const opened = await kms.send(new DecryptCommand({ CiphertextBlob: pair.PrivateKeyCiphertextBlob, EncryptionContext: { use: "pair" } }));
    expect(Buffer.from(opened.Plaintext!).equals(Buffer.from(pair.PrivateKeyPlaintext!))).toBe(true);
    const without = await kms.send(new GenerateDataKeyPairWithoutPlaintextCommand({ KeyId: sym, KeyPairSpec: "RSA_2048" }));
    expect(without).not.toHaveProperty("PrivateKeyPlaintext");
    expect(without.KeyPairSpec).toBe("RSA_2048");
  });
});
