import { createHash, createPublicKey, verify } from "node:crypto";
import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import { keyLabel } from "../../src/hsm/objects/templates.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("copies-test");
let store: Pkcs11KeyStore;
let inspect: TokenInspector;
const ref = (n: number) => ({ keyId: `0b9e8c1a-1111-4222-8333-${String(n).padStart(12, "0")}`, version: 1 });

const open = (sessionCopies: number) =>
  Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 4, sessionCopies });

async function roundTrip(s: Pkcs11KeyStore, r: { keyId: string; version: number }): Promise<void> {
  const iv = await s.generateRandom(12);
  const pt = Buffer.from(`plaintext of ${r.keyId}`);
  const ct = await s.encryptAesGcm(r, iv, Buffer.from("aad"), pt);
  expect((await s.decryptAesGcm(r, iv, Buffer.from("aad"), ct)).equals(pt)).toBe(true);
}

beforeAll(async () => {
  store = open(2);
  inspect = new TokenInspector(token);
  for (const n of [1, 2, 3]) await store.generateAesKey(ref(n));
});
afterAll(async () => {
  await store.close();
  token.remove();
});

describe("session-object copies of hot keys", () => {
  it("makes one in-memory copy on use, as sensitive and non-extractable as the token object", async () => {
    const label = keyLabel(ref(1).keyId, 1);
    expect(inspect.sessionCopies(label)).toEqual([]);
    await roundTrip(store, ref(1));
    await roundTrip(store, ref(1));
    const copies = inspect.sessionCopies(label);
    expect(copies).toHaveLength(1);
    const copy = copies[0]!;
    expect(inspect.bool(copy, pkcs11js.CKA_TOKEN)).toBe(false);
    expect(inspect.bool(copy, pkcs11js.CKA_SENSITIVE)).toBe(true);
    expect(inspect.bool(copy, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
    expect(inspect.rv(() => inspect.mod.C_GetAttributeValue(inspect.session, copy, [{ type: pkcs11js.CKA_VALUE }]))).toBe(0x11); // ATTRIBUTE_SENSITIVE
    const wrapper = inspect.wrappingKey();
    for (const mechanism of [pkcs11js.CKM_AES_KEY_WRAP, pkcs11js.CKM_AES_KEY_WRAP_PAD]) {
      expect(inspect.rv(() => inspect.mod.C_WrapKey(inspect.session, { mechanism }, wrapper, copy, Buffer.alloc(128)))).toBe(0x6a); // KEY_UNEXTRACTABLE
    }
    // The copy is the same key: what it encrypts, the token object decrypts.
    const iv = Buffer.alloc(12, 7);
    const params = { type: pkcs11js.CK_PARAMS_AES_GCM, iv, aad: Buffer.alloc(0), ivBits: 96, tagBits: 128 } as pkcs11js.IParams;
    inspect.mod.C_EncryptInit(inspect.session, { mechanism: pkcs11js.CKM_AES_GCM, parameter: params }, copy);
    const ct = inspect.mod.C_Encrypt(inspect.session, Buffer.from("same key"), Buffer.alloc(64));
    inspect.mod.C_DecryptInit(inspect.session, { mechanism: pkcs11js.CKM_AES_GCM, parameter: params }, inspect.find(label)!);
    expect(inspect.mod.C_Decrypt(inspect.session, ct, Buffer.alloc(64)).toString()).toBe("same key");
  });

  it("is destroyed with the key, and on dropCopies (disable, deletion) while the token object stays", async () => {
    const label = keyLabel(ref(1).keyId, 1);
    await roundTrip(store, ref(1));
    expect(inspect.sessionCopies(label)).toHaveLength(1);
    store.dropCopies(ref(1).keyId);
    expect(inspect.sessionCopies(label)).toEqual([]);
    expect(inspect.find(label)).toBeDefined();
    await roundTrip(store, ref(1));
    expect(inspect.sessionCopies(label)).toHaveLength(1);
    await store.destroyKey(ref(1));
    expect(inspect.sessionCopies(label)).toEqual([]);
    expect(inspect.find(label)).toBeUndefined();
  });

  it("keeps at most `sessionCopies` keys copied; a rarely used key does not push out a hotter one", async () => {
    for (let i = 0; i < 5; i++) await roundTrip(store, ref(2));
    await roundTrip(store, ref(3));
    for (const n of [4, 5]) await store.generateAesKey(ref(n));
    await roundTrip(store, ref(4)); // capacity 2 is full (2 and 3): 2 uses of 4 do not beat the 10 of 2, least recently used
    expect(store.copies.size).toBe(2);
    expect(inspect.sessionCopies(keyLabel(ref(2).keyId, 1))).toHaveLength(1);
    for (let i = 0; i < 6; i++) await roundTrip(store, ref(4));
    expect(store.copies.size).toBe(2);
    expect(inspect.sessionCopies(keyLabel(ref(4).keyId, 1))).toHaveLength(1);
    const copied = [2, 3].filter((n) => inspect.sessionCopies(keyLabel(ref(n).keyId, 1)).length === 1);
    expect(copied).toHaveLength(1); // one of them was evicted (destroyed), not just forgotten
  });

  it("falls back to the token object when the copies' session is closed under it, and copies again later", async () => {
    await roundTrip(store, ref(2));
    const label = keyLabel(ref(2).keyId, 1);
    expect(inspect.sessionCopies(label)).toHaveLength(1);
    inspect.mod.C_CloseSession(store.copies.session!);
    expect(inspect.sessionCopies(label)).toEqual([]);
    const lost = store.copies.stats.lost;
    await roundTrip(store, ref(2)); // the Init on the dead copy fails; retried on the token object in the same call
    expect(store.copies.stats.lost).toBeGreaterThan(lost);
    await roundTrip(store, ref(2));
    expect(inspect.sessionCopies(label)).toHaveLength(1);
  });

  it("after C_CloseAllSessions (device-fault recovery) the old store closes cleanly and a reopened one copies afresh", async () => {
    await roundTrip(store, ref(2));
    const label = keyLabel(ref(2).keyId, 1);
    expect(inspect.sessionCopies(label)).toHaveLength(1);
    inspect.mod.C_CloseAllSessions(inspect.mod.C_GetSessionInfo(inspect.session).slotID);
    // Closing every session logs the token out and invalidates its object handles: the store must be
    // reopened (the key store reconnection does that). Closing the old one must not throw on its dead copies.
    await store.close();
    store = open(2);
    inspect = new TokenInspector(token);
    expect(inspect.sessionCopies(label)).toEqual([]);
    await roundTrip(store, ref(2));
    expect(inspect.sessionCopies(label)).toHaveLength(1);
  });

  it("signs ECDSA P-256 on a copy of the private key; signatures verify with node:crypto", async () => {
    const r = ref(9);
    await store.generateKeyPair(r, "ECC_NIST_P256", "SIGN_VERIFY");
    const spki = createPublicKey({ key: await store.getPublicKey(r), format: "der", type: "spki" });
    const message = Buffer.from("message signed through a session copy");
    const digest = createHash("sha256").update(message).digest();
    for (let i = 0; i < 5; i++) {
      const sig = await store.sign(r, "ECDSA_SHA_256", digest);
      expect(verify("sha256", message, { key: spki, dsaEncoding: "der" }, sig)).toBe(true);
      expect(verify("sha256", Buffer.from("another message"), { key: spki, dsaEncoding: "der" }, sig)).toBe(false);
    }
    const copies = inspect.sessionCopies(keyLabel(r.keyId, 1), pkcs11js.CKO_PRIVATE_KEY);
    expect(copies).toHaveLength(1);
    expect(inspect.bool(copies[0]!, pkcs11js.CKA_SENSITIVE)).toBe(true);
    expect(inspect.bool(copies[0]!, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
    await store.destroyKey(r);
    expect(inspect.sessionCopies(keyLabel(r.keyId, 1), pkcs11js.CKO_PRIVATE_KEY)).toEqual([]);
  });

  it("makes no copies with sessionCopies: 0", async () => {
    const none = open(0);
    try {
      await roundTrip(none, ref(5));
      expect(none.copies.size).toBe(0);
    } finally {
      await none.close();
    }
  });
});

