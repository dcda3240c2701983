import pkcs11js from "pkcs11js";
import { afterAll, describe, expect, it, vi } from "vitest";
import { loadModule } from "../../src/hsm/runtime/module.js";
import { readTokenObjects } from "../../src/hsm/runtime/key-objects.js";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import { useTestToken } from "../helpers/softhsm.js";

/**
 * SoftHSM2's C_FindObjects reads every object on the token, so a search per key (at start-up) or per request
 * would grow with the number of keys. The key store searches a fixed number of times when it opens, however
 * many keys there are, and never while serving. (The 10,000-key timing is in `make bench`, not here.)
 */
const token = useTestToken("startup-scan");
afterAll(() => token.remove());
const open = () => Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 2 });
const ref = (n: number) => ({ keyId: `5ca1ab1e-0000-4000-8000-${String(n).padStart(12, "0")}`, version: 1 });

/** Counts C_FindObjectsInit on the process's one loaded module while `fn` runs. */
async function searches<T>(fn: () => Promise<T> | T): Promise<{ value: T; count: number }> {
  const spy = vi.spyOn(loadModule(token.modulePath), "C_FindObjectsInit");
  try {
    const value = await fn();
    return { value, count: spy.mock.calls.length };
  } finally {
    spy.mockRestore();
  }
}

async function addKeys(store: Pkcs11KeyStore, from: number, to: number): Promise<void> {
  for (let n = from; n < to; n++) {
    if (n % 3 === 2) await store.generateKeyPair(ref(n), "ECC_NIST_P256", "SIGN_VERIFY");
    else await store.generateAesKey(ref(n));
  }
}

describe("start-up scan", () => {
  it("searches the token a fixed number of times at open, whatever the number of keys, and never per request", async () => {
    const first = open();
    await addKeys(first, 0, 3);
    await first.close();
    const small = await searches(() => open());
    await addKeys(small.value, 3, 30);
    await small.value.close();
    const large = await searches(() => open());
    const store = large.value;
    try {
      expect(large.count).toBe(small.count);
      expect(large.count).toBeLessThanOrEqual(2);
      expect((await store.inventory()).length).toBe(30);
      const served = await searches(async () => {
        for (let n = 0; n < 30; n++) {
          const iv = await store.generateRandom(12);
          if (n % 3 === 2) await store.sign(ref(n), "ECDSA_SHA_256", Buffer.alloc(32, n));
          else await store.decryptAesGcm(ref(n), iv, Buffer.alloc(0), await store.encryptAesGcm(ref(n), iv, Buffer.alloc(0), Buffer.from("x")));
        }
      });
      expect(served.count).toBe(0);
    } finally {
      await store.close();
    }
  });

  it("opens with a probe and scan made elsewhere (the start-up worker) without searching, and serves the same keys", async () => {
    const reference = open();
    const mod = loadModule(token.modulePath);
    // What prepare-worker.ts does, on a session of its own: read the objects, keep the session open meanwhile.
    const slot = mod.C_GetSlotList(true).find((s) => mod.C_GetTokenInfo(s).label.trim() === token.label)!;
    const session = mod.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    const objects = readTokenObjects(mod, session);
    const opened = await searches(() => Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 2 }, {}, { capabilities: reference.capabilities, objects }));
    mod.C_CloseSession(session);
    const store = opened.value;
    try {
      expect(opened.count).toBe(0);
      expect((await store.inventory()).map((r) => r.keyId).sort()).toEqual((await reference.inventory()).map((r) => r.keyId).sort());
      const iv = await store.generateRandom(12);
      const ct = await store.encryptAesGcm(ref(0), iv, Buffer.alloc(0), Buffer.from("prepared"));
      expect((await reference.decryptAesGcm(ref(0), iv, Buffer.alloc(0), ct)).toString()).toBe("prepared");
      await store.sign(ref(2), "ECDSA_SHA_256", Buffer.alloc(32, 2));
    } finally {
      await store.close();
      await reference.close();
    }
  });
});
