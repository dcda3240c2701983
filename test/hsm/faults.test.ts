import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pkcs11js from "pkcs11js";
import { createPublicKey, randomUUID, verify } from "node:crypto";
import { explainConnectionFailure } from "../../src/hsm/runtime/connection-failure.js";
import { loadModule } from "../../src/hsm/runtime/module.js";
import { CKR } from "../../src/hsm/runtime/return-values.js";
import { QUARANTINE_PREFIX, aes256KeyTemplate, keyLabel, keyObjectId } from "../../src/hsm/objects/templates.js";
import type { ConnectionFailure } from "../../src/kms/key-store-connections.js";
import { injectFault, loseSessionsDuringAsyncCalls } from "../helpers/fault-injection.js";
import { type LifecycleService, openLifecycleService } from "../helpers/lifecycle.js";
import { useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

/**
 * Device faults against the real SoftHSM2 module: errors injected in front of it (test/helpers/fault-injection.ts)
 * and real ones (every session closed behind the service's back with C_CloseAllSessions, from this process).
 * What is proven: a stale session costs nothing; a token-level failure takes the store FAILED at once, calls
 * are refused quickly and cleanly (no hang, no internal error), and the store is CONNECTED again within 5 s
 * without a restart, with every acknowledged key usable and nothing half-made.
 */
const token = useTestToken("faults");
afterAll(() => token.remove());
const STORE = "faults";
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code ?? String(e));

let t: LifecycleService;
let mod: pkcs11js.PKCS11;
let slot: pkcs11js.Handle;
const faults: { id: string; failure: ConnectionFailure }[] = [];
const attempts: string[] = [];

beforeAll(async () => {
  t = await openLifecycleService([token], { now: () => new Date() }, [], {
    reconnect: { initialMs: 50, maxMs: 400 },
    explain: explainConnectionFailure,
    observer: {
      fault: (id, failure) => faults.push({ id, failure }),
      reconnectAttempt: (_id, outcome) => attempts.push(outcome),
    },
  });
  mod = loadModule(token.modulePath); // the very module object the key store uses
  slot = mod.C_GetSlotList(true).find((s) => mod.C_GetTokenInfo(s).label.trim() === token.label)!;
});
afterAll(async () => t?.close());

const state = () => t.connections.get(STORE).connectionState;

/** Waits for CONNECTED (polling every 20 ms) and returns how long it took; fails after 5 s. */
async function recovered(): Promise<number> {
  const start = Date.now();
  while (state() !== "CONNECTED") {
    if (Date.now() - start > 5000) throw new Error(`still ${state()} after 5 s: ${JSON.stringify(t.connections.get(STORE).failure)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

/** Settles within `ms` or fails the test: a request that hangs is a bug however it would have ended. */
async function settlesWithin<T>(p: Promise<T>, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`request still pending after ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

describe("device faults on a real SoftHSM2 token", () => {
  it("a call that meets a stale session is re-run on a fresh one: the caller sees nothing, the store stays CONNECTED", async () => {
    const aes = (await t.service.createKey({})).keyId;
    const sign = (await t.service.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    const before = faults.length;

    // The synchronous path (AES on the event loop)...
    let f = injectFault(mod, "C_EncryptInit", CKR.SESSION_HANDLE_INVALID);
    const blob = (await t.service.encrypt({ keyId: aes, plaintext: Buffer.from("still here") })).ciphertextBlob;
    expect(f.fired).toBe(1);
    // ...and the thread-pool path (ECDSA), where the session error comes from the *Init call.
    f = injectFault(mod, "C_SignInit", CKR.SESSION_CLOSED);
    const sig = await t.service.sign({ keyId: sign, message: Buffer.from("m"), signingAlgorithm: "ECDSA_SHA_256" });
    expect(f.fired).toBe(1);

    expect(state()).toBe("CONNECTED");
    expect(faults.length).toBe(before);
    expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("still here");
    const ok = await t.service.verify({ keyId: sign, message: Buffer.from("m"), signature: sig.signature, signingAlgorithm: "ECDSA_SHA_256" });
    expect(ok.signatureValid).toBe(true);
  });

  it("a session error that a fresh session does not cure either is a token fault", async () => {
    const aes = (await t.service.createKey({})).keyId;
    const f = injectFault(mod, "C_EncryptInit", CKR.SESSION_HANDLE_INVALID, 2);
    expect(await code(t.service.encrypt({ keyId: aes, plaintext: Buffer.from("x") }))).toBe("KeyUnavailableException");
    expect(f.fired).toBe(2);
    expect(faults.at(-1)!.failure.code).toBe("NETWORK_ERRORS");
    await recovered();
    expect(await code(t.service.encrypt({ keyId: aes, plaintext: Buffer.from("x") }))).toBe("ok");
  });

  it("CKR_DEVICE_ERROR: FAILED with its ConnectionErrorCode, calls refused quickly and cleanly, reconnected in the background", async () => {
    const key = (await t.service.createKey({ description: "acknowledged before the fault" })).keyId;
    const blob = (await t.service.encrypt({ keyId: key, plaintext: Buffer.from("kept") })).ciphertextBlob;
    // The device keeps failing for a while: the first reconnect attempts fail too (the token is not found).
    const slots = injectFault(mod, "C_GetSlotList", CKR.DEVICE_ERROR, 3);
    const enc = injectFault(mod, "C_EncryptInit", CKR.DEVICE_ERROR);

    expect(await code(t.service.encrypt({ keyId: key, plaintext: Buffer.from("x") }))).toBe("KeyUnavailableException");
    expect(enc.fired).toBe(1);
    const described = (await t.service.describeCustomKeyStores({ customKeyStoreId: STORE })).keyStores[0]!;
    expect(described.connectionState).toBe("FAILED");
    expect(described.failure?.code).toBe("INTERNAL_ERROR");
    expect(described.failure?.reason).toContain("CKR_DEVICE_ERROR");
    // While FAILED: the key reads Unavailable and every call is refused at once, none hangs, none is internal.
    expect((await t.service.describeKey({ keyId: key })).keyState).toBe("Unavailable");
    const refused = await settlesWithin(
      Promise.all(Array.from({ length: 20 }, () => code(t.service.encrypt({ keyId: key, plaintext: Buffer.from("x") })))),
    );
    expect(new Set(refused)).toEqual(new Set(["KMSInvalidStateException"]));
    expect(await code(t.service.createKey({}))).toBe("CustomKeyStoreInvalidStateException");

    await recovered();
    expect(slots.fired).toBe(3);
    expect(attempts.filter((a) => a === "failed").length).toBeGreaterThanOrEqual(3);
    expect(attempts.at(-1)).toBe("connected");
    expect((await t.service.describeKey({ keyId: key })).keyState).toBe("Enabled");
    expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("kept");
  });

  it("sessions closed behind the service's back (C_CloseAllSessions, a real logout): recovered within 5 s, no key lost", async () => {
    const aes = (await t.service.createKey({})).keyId;
    const rsa = (await t.service.createKey({ keySpec: "RSA_2048", keyUsage: "SIGN_VERIFY" })).keyId;
    const blob = (await t.service.encrypt({ keyId: aes, plaintext: Buffer.from("before") })).ciphertextBlob;
    const faultsBefore = faults.length;

    mod.C_CloseAllSessions(slot);
    // SoftHSM2 logged the token out and revoked the private-object handles: the next call fails, the
    // store goes FAILED, and the reconnect logs in again and finds the objects anew.
    expect(await code(t.service.encrypt({ keyId: aes, plaintext: Buffer.from("x") }))).toMatch(/^(KeyUnavailableException|ok)$/);
    expect(faults.length).toBe(faultsBefore + 1);
    expect(faults.at(-1)!.failure.code).toBe("NETWORK_ERRORS");
    expect(await recovered()).toBeLessThan(5000);

    expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("before");
    const sig = await t.service.sign({ keyId: rsa, message: Buffer.from("m"), signingAlgorithm: "RSASSA_PSS_SHA_256" });
    expect(sig.signature.length).toBe(256);
    expect(await code(t.service.createKey({}))).toBe("ok");
  });

  it("under concurrent load, a real fault ends every call cleanly (ok, KeyUnavailable or KMSInvalidState) and the store recovers", async () => {
    const aes = (await t.service.createKey({})).keyId;
    const ec = (await t.service.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    const calls: Promise<string>[] = [];
    for (let i = 0; i < 60; i++) {
      calls.push(code(t.service.encrypt({ keyId: aes, plaintext: Buffer.from(`m${i}`) })));
      calls.push(code(t.service.sign({ keyId: ec, message: Buffer.from(`m${i}`), signingAlgorithm: "ECDSA_SHA_256" })));
    }
    // Pull the sessions away once the first calls have finished, while others are still under way.
    await Promise.race(calls);
    mod.C_CloseAllSessions(slot);
    const outcomes = await settlesWithin(Promise.all(calls));
    expect(outcomes).toContain("ok");
    for (const o of outcomes) expect(["ok", "KeyUnavailableException", "KMSInvalidStateException"]).toContain(o);
    // Encrypt and P-256 Sign run synchronously on the event loop: every call may have finished before the
    // fault. The next call then meets it, and fails once (as documented), cleanly.
    if (outcomes.every((o) => o === "ok")) {
      expect(await code(t.service.sign({ keyId: ec, message: Buffer.from("meets the fault"), signingAlgorithm: "ECDSA_SHA_256" }))).toBe("KeyUnavailableException");
    }
    await recovered();
    expect(await code(t.service.sign({ keyId: ec, message: Buffer.from("after"), signingAlgorithm: "ECDSA_SHA_256" }))).toBe("ok");
  });

  it("P-384 and RSA signatures in flight on the thread pool when every session is closed: each ends ok, KeyUnavailable or KMSInvalidState, never internal", async () => {
    const p384 = (await t.service.createKey({ keySpec: "ECC_NIST_P384", keyUsage: "SIGN_VERIFY" })).keyId;
    const rsa = (await t.service.createKey({ keySpec: "RSA_2048", keyUsage: "SIGN_VERIFY" })).keyId;
    const faultsBefore = faults.length;
    const loss = loseSessionsDuringAsyncCalls(mod, slot, "C_SignAsync");
    try {
      const calls = Array.from({ length: 40 }, (_, i) =>
        i % 2
          ? code(t.service.sign({ keyId: p384, message: Buffer.from(`m${i}`), signingAlgorithm: "ECDSA_SHA_384" }))
          : code(t.service.sign({ keyId: rsa, message: Buffer.from(`m${i}`), signingAlgorithm: "RSASSA_PSS_SHA_256" })),
      );
      await Promise.race(calls);
      // Every session (4) is busy with a signature between C_SignInit and C_SignAsync when they are closed;
      // one of those then fails with CKR_GENERAL_ERROR (a session loss, not an internal error).
      await loss.closeAllSessions(4, 1);
      const outcomes = await settlesWithin(Promise.all(calls));
      for (const o of outcomes) expect(["ok", "KeyUnavailableException", "KMSInvalidStateException"]).toContain(o);
      expect(outcomes).toContain("ok");
      expect(outcomes.filter((o) => o === "KeyUnavailableException").length).toBeGreaterThanOrEqual(4);
      expect(loss.held).toBe(4);
      expect(loss.closedWhileInUse).toBe(0);
      expect(faults.length).toBe(faultsBefore + 1);
      expect(faults.at(-1)!.failure.code).toBe("NETWORK_ERRORS");
      expect(await recovered()).toBeLessThan(5000);
      expect(await code(t.service.sign({ keyId: p384, message: Buffer.from("after"), signingAlgorithm: "ECDSA_SHA_384" }))).toBe("ok");
      expect(await code(t.service.sign({ keyId: rsa, message: Buffer.from("after"), signingAlgorithm: "RSASSA_PSS_SHA_256" }))).toBe("ok");
      expect(loss.closedWhileInUse).toBe(0);
    } finally {
      loss.restore();
    }
  });

  it("a key whose object was destroyed behind the daemon's back fails alone (KMSInvalidState): the store stays CONNECTED", async () => {
    const ec = (await t.service.createKey({ keySpec: "ECC_NIST_P384", keyUsage: "SIGN_VERIFY" })).keyId;
    const aes = (await t.service.createKey({})).keyId;
    // Another key, used afterwards: a P-384 key (no session copy, which would count among the secret keys later).
    const other = (await t.service.createKey({ keySpec: "ECC_NIST_P384", keyUsage: "SIGN_VERIFY" })).keyId;
    expect(await code(t.service.sign({ keyId: ec, message: Buffer.from("m"), signingAlgorithm: "ECDSA_SHA_384" }))).toBe("ok");
    expect(await code(t.service.encrypt({ keyId: aes, plaintext: Buffer.from("m") }))).toBe("ok");
    const faultsBefore = faults.length;
    const inspector = new TokenInspector(token);
    for (const cls of [pkcs11js.CKO_PRIVATE_KEY, pkcs11js.CKO_SECRET_KEY]) {
      for (const o of inspector.objects(cls)) {
        if (o.label === keyLabel(ec, 1) || o.label === keyLabel(aes, 1)) inspector.mod.C_DestroyObject(inspector.session, o.handle);
      }
    }
    expect(await code(t.service.sign({ keyId: ec, message: Buffer.from("m"), signingAlgorithm: "ECDSA_SHA_384" }))).toBe("KMSInvalidStateException");
    // Looked up once, found gone: later calls are refused without another search.
    expect(await code(t.service.sign({ keyId: ec, message: Buffer.from("m"), signingAlgorithm: "ECDSA_SHA_384" }))).toBe("KMSInvalidStateException");
    expect(await code(t.service.encrypt({ keyId: aes, plaintext: Buffer.from("m") }))).toBe("KMSInvalidStateException");
    expect(state()).toBe("CONNECTED");
    expect(faults.length).toBe(faultsBefore);
    expect(await code(t.service.sign({ keyId: other, message: Buffer.from("m"), signingAlgorithm: "ECDSA_SHA_384" }))).toBe("ok");
  });

  it("a key whose object was replaced (same label, new handle) is looked up again once and the call succeeds", async () => {
    const ec = (await t.service.createKey({ keySpec: "ECC_NIST_P384", keyUsage: "SIGN_VERIFY" })).keyId;
    const pub = (await t.service.getPublicKey({ keyId: ec })).publicKey;
    const faultsBefore = faults.length;
    const inspector = new TokenInspector(token);
    const priv = inspector.objects(pkcs11js.CKO_PRIVATE_KEY).find((o) => o.label === keyLabel(ec, 1))!;
    // A copy on the token (as a restore would bring the same key back under a new handle), the original gone.
    inspector.mod.C_CopyObject(inspector.session, priv.handle, [{ type: pkcs11js.CKA_TOKEN, value: true }]);
    inspector.mod.C_DestroyObject(inspector.session, priv.handle);
    const sig = await t.service.sign({ keyId: ec, message: Buffer.from("m"), signingAlgorithm: "ECDSA_SHA_384" });
    const ok = verify("sha384", Buffer.from("m"), createPublicKey({ key: Buffer.from(pub), format: "der", type: "spki" }), Buffer.from(sig.signature));
    expect(ok).toBe(true);
    expect(state()).toBe("CONNECTED");
    expect(faults.length).toBe(faultsBefore);
  });

  it("a CreateKey that fails mid-way leaves nothing half-made; the key store is reconciled before it serves again", async () => {
    const records = async () => (await t.metadata.listKeys({ limit: 1000, includeCreating: true })).map((k) => k.keyId).sort();
    const before = await records();
    const objectsBefore = new TokenInspector(token).secretKeys().length;

    const f = injectFault(mod, "C_GenerateKey", CKR.DEVICE_ERROR);
    expect(await code(t.service.createKey({}))).toBe("KeyUnavailableException");
    expect(f.fired).toBe(1);
    await recovered();
    expect(await records()).toEqual(before);
    expect(new TokenInspector(token).secretKeys().length).toBe(objectsBefore);

    // A key pair whose generation failed on the thread-pool path: same result.
    const g = injectFault(mod, "C_GenerateKeyPairAsync", CKR.DEVICE_REMOVED);
    expect(await code(t.service.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" }))).toBe("KeyUnavailableException");
    expect(g.fired).toBe(1);
    expect(faults.at(-1)!.failure.code).toBe("CLUSTER_NOT_FOUND");
    await recovered();
    expect(await records()).toEqual(before);
  });

  it("a call waiting for a session when its store is disconnected gets KMSInvalidStateException; ConnectCustomKeyStore reconciles", async () => {
    const ec = (await t.service.createKey({ keySpec: "ECC_NIST_P256", keyUsage: "SIGN_VERIFY" })).keyId;
    // 4 sessions, 40 calls: most wait in the pool's queue when the store is disconnected under them.
    const calls = Array.from({ length: 40 }, (_, i) =>
      code(t.service.sign({ keyId: ec, message: Buffer.from(`m${i}`), signingAlgorithm: "ECDSA_SHA_256" })),
    );
    await t.service.disconnectCustomKeyStore({ customKeyStoreId: STORE });
    const outcomes = await settlesWithin(Promise.all(calls));
    for (const o of outcomes) expect(["ok", "KMSInvalidStateException"]).toContain(o);
    expect(outcomes).toContain("KMSInvalidStateException");
    // While disconnected, something leaves a p11kms-labelled object no record knows on the token.
    const inspector = new TokenInspector(token);
    const stray = randomUUID();
    inspector.mod.C_GenerateKey(inspector.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, aes256KeyTemplate(keyLabel(stray, 1), keyObjectId(stray, 1)));
    await t.service.connectCustomKeyStore({ customKeyStoreId: STORE });
    const labels = new TokenInspector(token).secretKeys().map((k) => k.label);
    expect(labels).toContain(QUARANTINE_PREFIX + keyLabel(stray, 1));
    expect(labels).not.toContain(keyLabel(stray, 1));
    expect(await code(t.service.sign({ keyId: ec, message: Buffer.from("m"), signingAlgorithm: "ECDSA_SHA_256" }))).toBe("ok");
  });

  it("disconnecting a FAILED store stops the reconnect loop; ConnectCustomKeyStore then reconnects it", async () => {
    const key = (await t.service.createKey({})).keyId;
    const slots = injectFault(mod, "C_GetSlotList", CKR.TOKEN_NOT_PRESENT, 1_000_000);
    injectFault(mod, "C_EncryptInit", CKR.TOKEN_NOT_PRESENT);
    expect(await code(t.service.encrypt({ keyId: key, plaintext: Buffer.from("x") }))).toBe("KeyUnavailableException");
    expect(state()).toBe("FAILED");
    expect(await code(t.service.connectCustomKeyStore({ customKeyStoreId: STORE }))).toBe("CustomKeyStoreInvalidStateException");
    await t.service.disconnectCustomKeyStore({ customKeyStoreId: STORE });
    const firedAtDisconnect = slots.fired;
    await new Promise((r) => setTimeout(r, 600));
    expect(slots.fired).toBe(firedAtDisconnect); // no attempt after the disconnect
    expect(state()).toBe("DISCONNECTED");
    slots.restore();
    await t.service.connectCustomKeyStore({ customKeyStoreId: STORE });
    expect(state()).toBe("CONNECTED");
    expect(await code(t.service.encrypt({ keyId: key, plaintext: Buffer.from("x") }))).toBe("ok");
  });

  it("a reconnect refused for the PIN (CKR_PIN_INCORRECT) is not retried: retrying could lock the user", async () => {
    const key = (await t.service.createKey({})).keyId;
    const login = injectFault(mod, "C_Login", 0xa0 /* CKR_PIN_INCORRECT */, 1_000_000);
    injectFault(mod, "C_EncryptInit", CKR.DEVICE_ERROR);
    try {
      expect(await code(t.service.encrypt({ keyId: key, plaintext: Buffer.from("x") }))).toBe("KeyUnavailableException");
      const start = Date.now();
      while (login.fired === 0 && Date.now() - start < 5000) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 600)); // several backoff periods
      expect(login.fired).toBe(1);
      expect(t.connections.get(STORE)).toMatchObject({ connectionState: "FAILED", failure: { code: "INVALID_CREDENTIALS" } });
    } finally {
      login.restore();
    }
    await t.service.disconnectCustomKeyStore({ customKeyStoreId: STORE });
    await t.service.connectCustomKeyStore({ customKeyStoreId: STORE });
    expect(await code(t.service.encrypt({ keyId: key, plaintext: Buffer.from("x") }))).toBe("ok");
  });
});
