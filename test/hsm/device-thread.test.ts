import { createHash, createPublicKey, verify } from "node:crypto";
import type pkcs11js from "pkcs11js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deviceThreadStats } from "../../src/hsm/runtime/device-thread.js";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import { keyLabel } from "../../src/hsm/objects/templates.js";
import type { ThreadSession } from "../../src/hsm/runtime/thread-session.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

/**
 * AES-GCM on the device thread (keyStores[].deviceThread), against a real SoftHSM2 token: the same results
 * as on the event loop, batching under concurrency, the thread's own session replaced when it is closed
 * behind the store's back, session copies kept alive while the thread uses them, and a clean close with
 * calls in flight.
 */
const token = useTestToken("device-thread");
const ref = (n: number) => ({ keyId: `0b9e8c1a-1111-4222-8333-${String(n).padStart(12, "0")}`, version: 1 });
const open = (deviceThread: boolean) =>
  Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 4, sessionCopies: 10, deviceThread, deviceThreadInlinePerTurn: 0 });
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code ?? String(e));
/** The session the store's device-thread calls run on (private: read for the test only). */
const threadSessionOf = (s: Pkcs11KeyStore) => ((s as unknown as { thread: ThreadSession }).thread as unknown as { session?: pkcs11js.Handle }).session;

let threaded: Pkcs11KeyStore;
let onLoop: Pkcs11KeyStore;
let inspect: TokenInspector;

beforeAll(async () => {
  threaded = open(true);
  await threaded.generateAesKey(ref(1));
  await threaded.generateAesKey(ref(2));
  onLoop = open(false);
  inspect = new TokenInspector(token);
});
afterAll(async () => {
  await threaded?.close();
  await onLoop?.close();
  token.remove();
});

describe("AES-GCM on the device thread", () => {
  it("gives what the event loop gives: each path decrypts the other's ciphertext; the AAD is bound", async () => {
    const iv = await threaded.nonce(12);
    const aad = Buffer.from("context");
    const pt = Buffer.from("four kilobytes or so ".repeat(200));
    const ct = await threaded.encryptAesGcm(ref(1), iv, aad, pt);
    expect(ct.length).toBe(pt.length + 16);
    expect((await onLoop.decryptAesGcm(ref(1), iv, aad, ct)).equals(pt)).toBe(true);
    const ct2 = await onLoop.encryptAesGcm(ref(1), iv, aad, pt);
    expect(ct2.equals(ct)).toBe(true); // same key, IV and AAD: the same bytes
    expect((await threaded.decryptAesGcm(ref(1), iv, aad, ct2)).equals(pt)).toBe(true);
    expect(await code(threaded.decryptAesGcm(ref(1), iv, Buffer.from("other"), ct))).toBe("InvalidCiphertextException");
    const tampered = Buffer.from(ct);
    tampered[3]! ^= 1;
    expect(await code(threaded.decryptAesGcm(ref(1), iv, aad, tampered))).toBe("InvalidCiphertextException");
    expect(await code(threaded.decryptAesGcm(ref(2), iv, aad, ct))).toBe("InvalidCiphertextException");
    expect(await code(threaded.decryptAesGcm(ref(1), iv, aad, ct.subarray(0, 10)))).toBe("InvalidCiphertextException");
    expect(await code(threaded.encryptAesGcm(ref(3), iv, aad, pt))).toBe("KMSInvalidStateException"); // no such material
  });

  it("runs concurrent calls several to a message, every answer going to its own caller", async () => {
    const before = deviceThreadStats();
    const inputs = Array.from({ length: 400 }, (_, i) => Buffer.from(`message ${i} `.repeat(1 + (i % 50))));
    const results = await Promise.all(
      inputs.map(async (pt, i) => {
        const iv = await threaded.nonce(12);
        const aad = Buffer.from(`aad ${i}`);
        const ct = await threaded.encryptAesGcm(ref(1 + (i % 2)), iv, aad, pt);
        return (await threaded.decryptAesGcm(ref(1 + (i % 2)), iv, aad, ct)).equals(pt);
      }),
    );
    expect(results.every(Boolean)).toBe(true);
    const after = deviceThreadStats();
    expect(after.calls - before.calls).toBe(800);
    expect(after.messages - before.messages).toBeLessThan(400); // batched: fewer messages than calls
    expect(after.inFlight).toBe(0);
  });

  it("signs ECDSA P-256 on the thread: concurrent signatures all verify with node:crypto, on copy and token object", async () => {
    const r = ref(9);
    await threaded.generateKeyPair(r, "ECC_NIST_P256", "SIGN_VERIFY");
    const spki = createPublicKey({ key: await threaded.getPublicKey(r), format: "der", type: "spki" });
    const messages = Array.from({ length: 100 }, (_, i) => Buffer.from(`message ${i}`));
    const sigs = await Promise.all(messages.map((m) => threaded.sign(r, "ECDSA_SHA_256", createHash("sha256").update(m).digest())));
    messages.forEach((m, i) => expect(verify("sha256", m, spki, sigs[i]!)).toBe(true));
    expect(inspect.sessionCopies(keyLabel(r.keyId, 1), 3 /* CKO_PRIVATE_KEY */)).toHaveLength(1);
    inspect.mod.C_CloseSession(threaded.copies.session!); // the copy goes: the thread signs on the token object
    const sig = await threaded.sign(r, "ECDSA_SHA_256", createHash("sha256").update(messages[0]!).digest());
    expect(verify("sha256", messages[0]!, spki, sig)).toBe(true);
    expect(await threaded.verify(r, "ECDSA_SHA_256", createHash("sha256").update(messages[0]!).digest(), sig)).toBe(true);
  });

  it("by default keeps lone calls on the event loop, sends a turn's further calls to the thread, and a lone call right after a big batch too", async () => {
    const store = Pkcs11KeyStore.open("default", { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 4, deviceThread: true });
    try {
      const iv = await store.nonce(12);
      const lone = async () => {
        await new Promise((resolve) => setImmediate(resolve)); // a turn of the event loop each, as separate requests
        await store.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.from("alone"));
      };
      await lone(); // the thread is shared with the other tests: after this call its last batch held one call at most
      let before = deviceThreadStats().calls;
      for (let i = 0; i < 5; i++) await lone();
      expect(deviceThreadStats().calls).toBe(before);
      await new Promise((resolve) => setImmediate(resolve));
      const burst = await Promise.all(Array.from({ length: 50 }, () => store.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.from("burst"))));
      expect(burst.every((ct) => ct.length === 5 + 16)).toBe(true);
      expect(deviceThreadStats().calls - before).toBe(48); // the first two of the turn ran on the loop
      // Under load the thread is idle only between batches: the next call still goes to it. That batch held
      // one call, so the calls after it are lone calls again, on the loop.
      before = deviceThreadStats().calls;
      await lone();
      expect(deviceThreadStats().calls - before).toBe(1);
      await lone();
      await lone();
      expect(deviceThreadStats().calls - before).toBe(1);
    } finally {
      await store.close();
    }
  });

  it("replaces its session when it is closed behind the store's back; the caller sees nothing", async () => {
    const iv = await threaded.nonce(12);
    await threaded.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.from("warm"));
    const old = threadSessionOf(threaded)!;
    inspect.mod.C_CloseSession(old);
    const ct = await threaded.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.from("after"));
    expect((await onLoop.decryptAesGcm(ref(1), iv, Buffer.alloc(0), ct)).toString()).toBe("after");
    const now = threadSessionOf(threaded);
    expect(now).toBeDefined();
    expect(now!.equals(old)).toBe(false);
  });

  it("keeps a session copy alive while the thread uses it: dropped meanwhile, destroyed once the call is back", async () => {
    const label = keyLabel(ref(2).keyId, 1);
    const iv = await threaded.nonce(12);
    await threaded.encryptAesGcm(ref(2), iv, Buffer.alloc(0), Buffer.from("copy me"));
    expect(inspect.sessionCopies(label)).toHaveLength(1);
    const pending = Array.from({ length: 20 }, () => threaded.encryptAesGcm(ref(2), iv, Buffer.alloc(0), Buffer.from("in flight")));
    threaded.dropCopies(ref(2).keyId); // while the calls are queued for the thread
    expect(inspect.sessionCopies(label)).toHaveLength(1); // pinned: not destroyed yet
    expect((await Promise.all(pending)).every((ct) => ct.length === 9 + 16)).toBe(true);
    expect(inspect.sessionCopies(label)).toEqual([]);
  });

  it("falls back to the token object on the thread when the copies' session is gone", async () => {
    const label = keyLabel(ref(1).keyId, 1);
    const iv = await threaded.nonce(12);
    await threaded.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.from("x"));
    const copies = inspect.sessionCopies(label).length; // the event-loop store may hold one too
    expect(copies).toBeGreaterThanOrEqual(1);
    inspect.mod.C_CloseSession(threaded.copies.session!);
    expect(inspect.sessionCopies(label)).toHaveLength(copies - 1);
    const lost = threaded.copies.stats.lost;
    const ct = await threaded.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.from("on the token object"));
    expect((await onLoop.decryptAesGcm(ref(1), iv, Buffer.alloc(0), ct)).toString()).toBe("on the token object");
    expect(threaded.copies.stats.lost).toBeGreaterThan(lost);
  });

  it("answers KeyUnavailableException when the thread does not answer in time, and serves again on a new thread", async () => {
    const faults: string[] = [];
    const store = Pkcs11KeyStore.open(
      "default",
      { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 2, deviceThread: true, deviceThreadInlinePerTurn: 0, callTimeoutMs: 1 },
      { tokenFault: (op) => faults.push(op) },
    );
    try {
      const iv = await store.nonce(12);
      // A message of 64 × 4 MiB keeps the thread busy far past the 1 ms timeout (checked every 200 ms).
      const big = Buffer.alloc(4 * 1024 * 1024);
      const outcomes = await Promise.all(Array.from({ length: 64 }, () => code(store.encryptAesGcm(ref(1), iv, Buffer.alloc(0), big))));
      expect(outcomes).toContain("KeyUnavailableException");
      for (const o of outcomes) expect(["ok", "KeyUnavailableException"]).toContain(o);
      expect(faults.length).toBeGreaterThan(0); // the owner is told: it takes the store offline and reopens it
      // A small call on a fresh thread (and session) answers well within the timeout's check period.
      expect(await code(store.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.from("small")))).toBe("ok");
    } finally {
      await store.close();
    }
  });

  it("closes cleanly with calls in flight: each ends ok or KMSInvalidStateException, none hangs", async () => {
    const store = open(true);
    const iv = await store.nonce(12);
    const calls = Array.from({ length: 200 }, () => code(store.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.alloc(4096))));
    await store.close();
    const outcomes = new Set(await Promise.all(calls));
    for (const o of outcomes) expect(["ok", "KMSInvalidStateException"]).toContain(o);
    expect(await code(store.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.alloc(1)))).toBe("KMSInvalidStateException");
  });

  // Last: it logs the token out for every store of this process.
  it("after C_CloseAllSessions (a real logout) a call on the thread answers KeyUnavailableException and reports a token fault", async () => {
    const faults: string[] = [];
    const store = Pkcs11KeyStore.open(
      "default",
      { modulePath: token.modulePath, tokenLabel: token.label, pin: token.pin, maxSessions: 2, deviceThread: true, deviceThreadInlinePerTurn: 0 },
      { tokenFault: (op) => faults.push(op) },
    );
    try {
      const iv = await store.nonce(12);
      expect(await code(store.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.from("before")))).toBe("ok");
      inspect.mod.C_CloseAllSessions(inspect.mod.C_GetSessionInfo(threadSessionOf(store)!).slotID);
      expect(await code(store.encryptAesGcm(ref(1), iv, Buffer.alloc(0), Buffer.from("after")))).toBe("KeyUnavailableException");
      expect(faults).toContain("encrypt");
    } finally {
      await store.close();
    }
  });
});
