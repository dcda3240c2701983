import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { P11KmsClient } from "../../packages/client/src/client/kms-client.js";
import { KmsClientError } from "../../packages/client/src/client/errors.js";
import { Envelope } from "../../packages/client/src/envelope/envelope.js";
import type { KeyringKms } from "../../packages/client/src/envelope/keyring.js";
import { type DaemonHandle, startDaemon } from "../helpers/daemon.js";
import { pattern } from "../helpers/envelope.js";

let d: DaemonHandle;
let kms: P11KmsClient;
let keyA: string;
let keyB: string;
let keyC: string;

beforeAll(async () => {
  d = await startDaemon();
  kms = new P11KmsClient({ endpoint: d.endpoint });
  [keyA, keyB, keyC] = await Promise.all([0, 1, 2].map(async () => (await kms.createKey({ description: "envelope" })).keyMetadata.arn));
});
afterAll(async () => {
  kms?.close();
  await d?.stop();
  d?.token.remove();
});

/** The client with its KMS calls counted. */
function counting(): KeyringKms & { calls: Record<string, number> } {
  const calls: Record<string, number> = { generateDataKey: 0, encrypt: 0, decrypt: 0 };
  return {
    calls,
    generateDataKey: (r) => (calls.generateDataKey!++, kms.generateDataKey(r)),
    encrypt: (r) => (calls.encrypt!++, kms.encrypt(r)),
    decrypt: (r) => (calls.decrypt!++, kms.decrypt(r)),
  };
}

describe("the client SDK against a running daemon", () => {
  it("makes typed calls and surfaces typed errors with the AWS exception name", async () => {
    const dk = await kms.generateDataKey({ keyId: keyA, keySpec: "AES_256", encryptionContext: { a: "b" } });
    expect(dk.plaintext.length).toBe(32);
    const back = await kms.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { a: "b" } });
    expect(back.plaintext.equals(dk.plaintext)).toBe(true);
    const err = await kms.decrypt({ ciphertextBlob: dk.ciphertextBlob, encryptionContext: { a: "c" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KmsClientError);
    expect(err).toMatchObject({ type: "InvalidCiphertextException", operation: "Decrypt", attempts: 1, retryable: false });
    const missing = await kms.describeKey({ keyId: "4a4b2c6e-0000-4000-8000-000000000000" }).catch((e: unknown) => e);
    expect(missing).toMatchObject({ type: "NotFoundException" });
    expect((await kms.listKeys({ limit: 10 })).keys.map((k) => k.keyArn)).toContain(keyA);
  });

  it("reports an unreachable daemon as NetworkingError after retrying, within the deadline", async () => {
    const dead = new P11KmsClient({ endpoint: "127.0.0.1:1", timeoutMs: 2000, retry: { baseDelayMs: 10, maxAttempts: 3 } });
    const t = Date.now();
    const err = await dead.generateRandom({ numberOfBytes: 1 }).catch((e: unknown) => e);
    dead.close();
    expect(err).toMatchObject({ type: "NetworkingError", attempts: 3 });
    expect(Date.now() - t).toBeLessThan(2500);
  });
});

describe("envelope encryption with KMS keys", () => {
  it("encrypts under every key of the keyring; any one of them decrypts", async () => {
    const plaintext = pattern(200_000);
    const m = await new Envelope({ kms, keyIds: [keyA, keyB] }).encrypt(plaintext, { context: { app: "e2e" } });
    const viaB = counting();
    const r = await new Envelope({ kms: viaB, keyIds: [keyB] }).decrypt(m, { expectedContext: { app: "e2e" } });
    expect(r.plaintext.equals(plaintext)).toBe(true);
    expect(r.keyArn).toBe(keyB);
    expect(viaB.calls.decrypt).toBe(1); // the EDK under A is not this keyring's: never tried
    const viaDiscovery = await new Envelope({ kms, discovery: true }).decrypt(m);
    expect(viaDiscovery.keyArn).toBe(keyA);
  });

  it("falls through keys the caller cannot use, and names them all when none works", async () => {
    const m = await new Envelope({ kms, keyIds: [keyA, keyB] }).encrypt(Buffer.from("x"));
    // A keyring that lists C only: neither EDK is under C.
    await expect(new Envelope({ kms, keyIds: [keyC] }).decrypt(m)).rejects.toMatchObject({ code: "NoDecryptableDataKey" });
    // A KMS that refuses key A (as a key policy would): B is used instead.
    const refusesA: KeyringKms = {
      ...kms,
      generateDataKey: (r) => kms.generateDataKey(r),
      encrypt: (r) => kms.encrypt(r),
      decrypt: (r) => (r.keyId === keyA ? Promise.reject(new KmsClientError("AccessDeniedException", "no", 7, "Decrypt", 1)) : kms.decrypt(r)),
    };
    expect((await new Envelope({ kms: refusesA, keyIds: [keyA, keyB] }).decrypt(m)).keyArn).toBe(keyB);
    const refusesAll: KeyringKms = { ...refusesA, decrypt: () => Promise.reject(new KmsClientError("AccessDeniedException", "no", 7, "Decrypt", 1)) };
    await expect(new Envelope({ kms: refusesAll, keyIds: [keyA, keyB] }).decrypt(m)).rejects.toThrow(
      new RegExp(`${keyA}: AccessDeniedException; ${keyB}: AccessDeniedException`),
    );
  });

  it("binds the context to the data key at the KMS too", async () => {
    const m = await new Envelope({ kms, keyIds: [keyA] }).encrypt(Buffer.from("x"), { context: { tenant: "1" } });
    // Re-labelled header: the KMS refuses the data key under another context (then the header tag would too).
    const { encodeHeaderBody, parseHeader } = await import("../../packages/client/src/envelope/header.js");
    const p = parseHeader(m)!;
    const forged = Buffer.concat([encodeHeaderBody({ ...p.header, context: { tenant: "2" } }), m.subarray(p.body.length)]);
    await expect(new Envelope({ kms, keyIds: [keyA] }).decrypt(forged)).rejects.toThrow(/InvalidCiphertextException/);
  });

  it("caches data keys only when asked, within its limits (counted GenerateDataKey calls)", async () => {
    const plain = counting();
    const noCache = new Envelope({ kms: plain, keyIds: [keyA] });
    for (let i = 0; i < 5; i++) await noCache.encrypt(Buffer.from("x"), { context: { c: "1" } });
    expect(plain.calls.generateDataKey).toBe(5);

    const cached = counting();
    const env = new Envelope({ kms: cached, keyIds: [keyA, keyB], cache: { maxAgeMs: 60_000, maxMessages: 4, maxBytes: 1000 } });
    const messages: Buffer[] = [];
    for (let i = 0; i < 10; i++) messages.push(await env.encrypt(Buffer.from(`message ${i}`), { context: { c: "1" } }));
    expect(cached.calls.generateDataKey).toBe(3); // 4 + 4 + 2
    expect(cached.calls.encrypt).toBe(3); // the copy under key B, once per data key
    await env.encrypt(Buffer.alloc(1001), { context: { c: "1" } }); // larger than maxBytes: a fresh key, not cached
    await env.encrypt(Buffer.from("y"), { context: { c: "2" } }); // another context: another key
    expect(cached.calls.generateDataKey).toBe(5);
    for (const [i, m] of messages.entries()) expect((await env.decrypt(m)).plaintext.toString()).toBe(`message ${i}`);
    expect(cached.calls.decrypt).toBe(3);
  });
});
