import pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import { keyLabel, QUARANTINE_PREFIX } from "../../src/hsm/objects/templates.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const token = useTestToken("ks-test");
let store: Pkcs11KeyStore;
let inspect: TokenInspector;
const ref = { keyId: "0b9e8c1a-1111-4222-8333-444455556666", version: 1 };

beforeAll(async () => {
  store = Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 4 });
  inspect = new TokenInspector(token);
  await store.generateAesKey(ref);
});
afterAll(async () => {
  await store.close();
  token.remove();
});

describe("Pkcs11KeyStore on SoftHSM2", () => {
  it("generates a token key that is sensitive, never extractable and limited to encrypt/decrypt", () => {
    const h = inspect.find(keyLabel(ref.keyId, ref.version))!;
    expect(h).toBeDefined();
    expect(inspect.bool(h, pkcs11js.CKA_TOKEN)).toBe(true);
    expect(inspect.bool(h, pkcs11js.CKA_SENSITIVE)).toBe(true);
    expect(inspect.bool(h, pkcs11js.CKA_ALWAYS_SENSITIVE)).toBe(true);
    expect(inspect.bool(h, pkcs11js.CKA_EXTRACTABLE)).toBe(false);
    expect(inspect.bool(h, pkcs11js.CKA_NEVER_EXTRACTABLE)).toBe(true);
    expect(inspect.bool(h, pkcs11js.CKA_WRAP)).toBe(false);
    expect(inspect.bool(h, pkcs11js.CKA_ENCRYPT)).toBe(true);
  });

  it("refuses to reveal or wrap out the key value", () => {
    const h = inspect.find(keyLabel(ref.keyId, ref.version))!;
    const read = inspect.rv(() => inspect.mod.C_GetAttributeValue(inspect.session, h, [{ type: pkcs11js.CKA_VALUE }]));
    expect(read).toBe(0x11); // CKR_ATTRIBUTE_SENSITIVE
    const wrapper = inspect.wrappingKey();
    for (const mechanism of [pkcs11js.CKM_AES_KEY_WRAP, pkcs11js.CKM_AES_KEY_WRAP_PAD]) {
      const wrapped = inspect.rv(() =>
        inspect.mod.C_WrapKey(inspect.session, { mechanism }, wrapper, h, Buffer.alloc(128)),
      );
      expect(wrapped).toBe(0x6a); // CKR_KEY_UNEXTRACTABLE
    }
  });

  it("hands out nonces that never repeat, across device blocks and concurrent refills", async () => {
    const seen = new Set<string>();
    // 3 blocks' worth and more, half of them requested concurrently so refills race.
    const batches = await Promise.all(Array.from({ length: 4 }, () => Promise.all(Array.from({ length: 300 }, () => store.nonce(12)))));
    for (const n of batches.flat()) {
      expect(n.length).toBe(12);
      seen.add(n.toString("hex"));
    }
    for (let i = 0; i < 800; i++) seen.add((await store.nonce(12)).toString("hex"));
    expect(seen.size).toBe(2000);
    expect((await store.nonce(5000)).length).toBe(5000);
  });

  it("encrypts and decrypts with AES-GCM on the device, binding the AAD", async () => {
    const iv = await store.generateRandom(12);
    const pt = Buffer.from("attack at dawn");
    const ct = await store.encryptAesGcm(ref, iv, Buffer.from("aad-1"), pt);
    expect(ct.length).toBe(pt.length + 16);
    expect(ct.subarray(0, pt.length).equals(pt)).toBe(false);
    expect((await store.decryptAesGcm(ref, iv, Buffer.from("aad-1"), ct)).equals(pt)).toBe(true);
    await expect(store.decryptAesGcm(ref, iv, Buffer.from("aad-2"), ct)).rejects.toMatchObject({ code: "InvalidCiphertextException" });
    const otherIv = Buffer.from(iv);
    otherIv[0]! ^= 1;
    await expect(store.decryptAesGcm(ref, otherIv, Buffer.from("aad-1"), ct)).rejects.toMatchObject({ code: "InvalidCiphertextException" });
    await expect(store.decryptAesGcm(ref, iv, Buffer.from("aad-1"), ct.subarray(0, 10))).rejects.toMatchObject({ code: "InvalidCiphertextException" });
  });

  it("keeps working after failed decryptions (sessions are not left with an active operation)", async () => {
    const iv = await store.generateRandom(12);
    const ct = await store.encryptAesGcm(ref, iv, Buffer.alloc(0), Buffer.from("x"));
    for (let i = 0; i < 20; i++) {
      await expect(store.decryptAesGcm(ref, iv, Buffer.from("wrong"), ct)).rejects.toMatchObject({ code: "InvalidCiphertextException" });
    }
    expect((await store.decryptAesGcm(ref, iv, Buffer.alloc(0), ct)).toString()).toBe("x");
  });

  it("serves many concurrent operations", async () => {
    const results = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const iv = await store.generateRandom(12);
        const pt = Buffer.from(`message ${i}`);
        const ct = await store.encryptAesGcm(ref, iv, Buffer.alloc(0), pt);
        return (await store.decryptAesGcm(ref, iv, Buffer.alloc(0), ct)).equals(pt);
      }),
    );
    expect(results.every(Boolean)).toBe(true);
  });

  it("answers an unknown key reference with KMSInvalidStateException, not a crash", async () => {
    await expect(
      store.encryptAesGcm({ keyId: ref.keyId, version: 9 }, Buffer.alloc(12), Buffer.alloc(0), Buffer.from("x")),
    ).rejects.toMatchObject({ code: "KMSInvalidStateException" });
  });

  it("returns random bytes of the asked length that differ call to call", async () => {
    const a = await store.generateRandom(32);
    const b = await store.generateRandom(32);
    expect(a.length).toBe(32);
    expect(a.equals(b)).toBe(false);
  });

  it("finds its objects again when reopened (handles cached from one scan)", async () => {
    const other = { keyId: "0b9e8c1a-1111-4222-8333-777777777777", version: 2 };
    await store.generateAesKey(other);
    const reopened = Pkcs11KeyStore.open("again", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 2 });
    expect(reopened.hasKey(other)).toBe(true);
    expect((await reopened.inventory()).map((r) => `${r.keyId}:${r.version}`).sort()).toEqual(
      [`${ref.keyId}:1`, `${other.keyId}:2`].sort(),
    );
    await reopened.close();
  });

  it("quarantines by relabelling and destroys for real", async () => {
    const q = { keyId: "0b9e8c1a-1111-4222-8333-888888888888", version: 1 };
    const d = { keyId: "0b9e8c1a-1111-4222-8333-999999999999", version: 1 };
    await store.generateAesKey(q);
    await store.generateAesKey(d);
    await store.quarantineKey(q);
    await store.destroyKey(d);
    await store.destroyKey(d); // idempotent
    const labels = inspect.secretKeys().map((k) => k.label);
    expect(labels).toContain(QUARANTINE_PREFIX + keyLabel(q.keyId, 1));
    expect(labels).not.toContain(keyLabel(q.keyId, 1));
    expect(labels).not.toContain(keyLabel(d.keyId, 1));
    expect(store.hasKey(q)).toBe(false);
    expect(store.hasKey(d)).toBe(false);
  });

  it("fails to open an unknown token label, naming the labels present", () => {
    expect(() =>
      Pkcs11KeyStore.open("x", { modulePath: token.modulePath, tokenLabel: "no-such-token", pin: token.pin, maxSessions: 1 }),
    ).toThrow(/no token labelled 'no-such-token'.*ks-test/);
  });
});
