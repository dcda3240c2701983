import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { wrapKeyMaterial } from "../../src/cli/import-wrap.js";
import { type Pkcs11KeyStore } from "../../src/hsm/index.js";
import { keyLabel } from "../../src/hsm/objects/templates.js";
import type { KmsService } from "../../src/kms/service.js";
import type { RecordCacheStats } from "../../src/store/caching-metadata-store.js";
import { type LifecycleService, MovableClock, openLifecycleService } from "../helpers/lifecycle.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

/**
 * The key record cache (and the session copies it drops) must never let a request see a state older than
 * the last change made on this replica: every state-changing operation, then at once the next request.
 */
const token = useTestToken("record-cache");
const clock = new MovableClock();
let fakeNow = 0;
let t: LifecycleService;
let svc: KmsService;
let inspect: TokenInspector;
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code);
const text = Buffer.from("cached?");
const encrypt = (keyId: string) => code(svc.encrypt({ keyId, plaintext: text }));
const stats = () => (t.deps.metadata as unknown as { recordCacheStats: RecordCacheStats }).recordCacheStats;
const store = () => t.deps.keyStores.get("record-cache") as Pkcs11KeyStore;

beforeAll(async () => {
  t = await openLifecycleService([token], clock, [], { recordCache: { maxEntries: 100, ttlMs: 2000, now: () => fakeNow } });
  svc = t.service;
  inspect = new TokenInspector(token);
});
afterAll(async () => {
  await t.close();
  token.remove();
});

/** Encrypts twice (the second from the cache) and checks the record really is cached. */
async function warm(keyId: string): Promise<void> {
  expect(await encrypt(keyId)).toBe("ok");
  const hits = stats().hits;
  expect(await encrypt(keyId)).toBe("ok");
  expect(stats().hits).toBeGreaterThan(hits);
}

describe("key record cache: every change is seen by the next request on this replica", () => {
  it("serves repeated lookups from memory, not SQLite", async () => {
    const { keyId } = await svc.createKey({});
    await warm(keyId);
    const misses = stats().misses;
    for (let i = 0; i < 10; i++) await encrypt(keyId);
    expect(stats().misses).toBe(misses);
  });

  it("DisableKey / EnableKey; disabling also destroys the key's session copy", async () => {
    const { keyId } = await svc.createKey({});
    await warm(keyId);
    expect(inspect.sessionCopies(keyLabel(keyId, 1))).toHaveLength(1);
    await svc.disableKey({ keyId });
    expect(await encrypt(keyId)).toBe("DisabledException");
    expect(inspect.sessionCopies(keyLabel(keyId, 1))).toEqual([]);
    await svc.enableKey({ keyId });
    expect(await encrypt(keyId)).toBe("ok");
  });

  it("ScheduleKeyDeletion / CancelKeyDeletion, and the reaper's deletion", async () => {
    const { keyId } = await svc.createKey({});
    await warm(keyId);
    await svc.scheduleKeyDeletion({ keyId, pendingWindowInDays: 7 });
    expect(await encrypt(keyId)).toBe("KMSInvalidStateException");
    await svc.cancelKeyDeletion({ keyId });
    expect(await encrypt(keyId)).toBe("DisabledException");
    await svc.enableKey({ keyId });
    await warm(keyId);
    await svc.scheduleKeyDeletion({ keyId, pendingWindowInDays: 7 });
    clock.advanceDays(8);
    await t.jobs.tick();
    expect(await encrypt(keyId)).toBe("NotFoundException");
    expect(inspect.sessionCopies(keyLabel(keyId, 1))).toEqual([]);
    expect(inspect.find(keyLabel(keyId, 1))).toBeUndefined();
  });

  it("RotateKeyOnDemand: the next Encrypt uses the new version", async () => {
    const { keyId } = await svc.createKey({});
    await warm(keyId);
    await svc.rotateKeyOnDemand({ keyId });
    const blob = (await svc.encrypt({ keyId, plaintext: text })).ciphertextBlob;
    expect((await svc.decrypt({ ciphertextBlob: blob })).plaintext.equals(text)).toBe(true);
    expect(inspect.sessionCopies(keyLabel(keyId, 2))).toHaveLength(1); // the new version is the one in use
  });

  it("UpdateAlias / DeleteAlias: the next request by alias goes to the new target, or finds none", async () => {
    const a = await svc.createKey({});
    const b = await svc.createKey({});
    await svc.createAlias({ aliasName: "alias/cached", targetKeyId: a.keyId });
    await warm("alias/cached");
    await svc.updateAlias({ aliasName: "alias/cached", targetKeyId: b.keyId });
    const blob = (await svc.encrypt({ keyId: "alias/cached", plaintext: text })).ciphertextBlob;
    expect((await svc.decrypt({ ciphertextBlob: blob })).keyId).toContain(b.keyId);
    await svc.deleteAlias({ aliasName: "alias/cached" });
    expect(await encrypt("alias/cached")).toBe("NotFoundException");
  });

  it("ImportKeyMaterial / DeleteImportedKeyMaterial", async () => {
    const { keyId } = await svc.createKey({ origin: "EXTERNAL" });
    expect(await encrypt(keyId)).toBe("KMSInvalidStateException");
    const p = await svc.getParametersForImport({ keyId, wrappingAlgorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_2048" });
    const encryptedKeyMaterial = wrapKeyMaterial(randomBytes(32), p.publicKey, "RSAES_OAEP_SHA_1");
    await svc.importKeyMaterial({ keyId, importToken: p.importToken, encryptedKeyMaterial, expirationModel: "KEY_MATERIAL_DOES_NOT_EXPIRE" });
    await warm(keyId);
    expect(inspect.sessionCopies(keyLabel(keyId, 1))).toHaveLength(1);
    await svc.deleteImportedKeyMaterial({ keyId });
    expect(await encrypt(keyId)).toBe("KMSInvalidStateException");
    expect(inspect.sessionCopies(keyLabel(keyId, 1))).toEqual([]);
  });

  it("a change made by another replica (straight to the database) shows once the cached record ages out", async () => {
    const { keyId } = await svc.createKey({});
    await warm(keyId);
    // Another replica disables the key in the shared database: this one cannot know before ttlMs.
    expect(await t.metadata.transitionKey(keyId, "Enabled", "Disabled", undefined)).toBe(true);
    expect(await encrypt(keyId)).toBe("ok");
    fakeNow += 2001;
    expect(await encrypt(keyId)).toBe("DisabledException");
  });

  it("the store's copies are used: Encrypt runs on a session object", async () => {
    const { keyId } = await svc.createKey({});
    await warm(keyId);
    expect(store().copies.size).toBeGreaterThan(0);
  });
});
