import { randomBytes } from "node:crypto";
import {
  buildClient,
  CommitmentPolicy,
  getClient,
  getLocalCryptographicMaterialsCache,
  KMS,
  KmsKeyringNode,
  NodeCachingMaterialsManager,
} from "@aws-crypto/client-node";
import { CreateKeyCommand } from "@aws-sdk/client-kms";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kmsClient, REGION } from "../helpers/aws.js";
import { type DaemonHandle, startDaemon } from "../helpers/daemon.js";

let d: DaemonHandle;
let keyArn: string;
const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

beforeAll(async () => {
  d = await startDaemon();
  const kms = kmsClient(d);
  keyArn = (await kms.send(new CreateKeyCommand({ Description: "esdk" }))).KeyMetadata!.Arn!;
  kms.destroy();
});
afterAll(async () => {
  await d?.stop();
  d?.token.remove();
});

/** The Encryption SDK's KMS keyring, its client pointed at the facade. */
function keyring(calls: string[] = []): KmsKeyringNode {
  const clientProvider = getClient(KMS, { endpoint: d.awsEndpoint, credentials: d.accessKey, maxAttempts: 1 });
  return new KmsKeyringNode({
    generatorKeyId: keyArn,
    clientProvider: (region: string) => {
      expect(region).toBe(REGION);
      const client = clientProvider(region) as KMS;
      client.middlewareStack.add((next, ctx) => (args) => {
        calls.push(ctx.commandName ?? "?");
        return next(args);
      });
      return client;
    },
  });
}

describe("AWS Encryption SDK for JavaScript with a KMS keyring on p11kms", () => {
  it("encrypts and decrypts a large buffer with an encryption context", async () => {
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const context = { tenant: "acme", purpose: "esdk-test" };
    const { result, messageHeader } = await encrypt(keyring(), data, { encryptionContext: context });
    expect(messageHeader.encryptedDataKeys[0]!.providerInfo).toBe(keyArn);
    const { plaintext, messageHeader: header } = await decrypt(keyring(), result);
    expect(plaintext.equals(data)).toBe(true);
    expect(header.encryptionContext).toMatchObject(context);
  });

  it("fails to decrypt a message whose header was tampered with", async () => {
    const { result } = await encrypt(keyring(), Buffer.from("hello"), { encryptionContext: { a: "b" } });
    const tampered = Buffer.from(result);
    tampered[60]! ^= 1;
    await expect(decrypt(keyring(), tampered)).rejects.toThrow();
  });

  it("reuses data keys through the caching materials manager", async () => {
    const calls: string[] = [];
    const cache = getLocalCryptographicMaterialsCache(10);
    const cmm = new NodeCachingMaterialsManager({
      backingMaterials: keyring(calls),
      cache,
      maxAge: 60_000,
      maxMessagesEncrypted: 10,
    });
    const messages = [];
    for (let i = 0; i < 5; i++) messages.push((await encrypt(cmm, Buffer.from(`message ${i}`), { encryptionContext: { n: "1" } })).result);
    expect(calls.filter((c) => c === "GenerateDataKeyCommand")).toHaveLength(1);
    for (const [i, m] of messages.entries()) expect((await decrypt(cmm, m)).plaintext.toString()).toBe(`message ${i}`);
    expect(calls.filter((c) => c === "DecryptCommand")).toHaveLength(1);
  });
});
