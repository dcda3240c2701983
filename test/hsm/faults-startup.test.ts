import { afterAll, describe, expect, it } from "vitest";
import pkcs11js from "pkcs11js";
import { explainConnectionFailure } from "../../src/hsm/runtime/connection-failure.js";
import { loadModule } from "../../src/hsm/runtime/module.js";
import type { ConnectionFailure } from "../../src/kms/key-store-connections.js";
import { type LifecycleService, openLifecycleService } from "../helpers/lifecycle.js";
import { useTestToken } from "../helpers/softhsm.js";
import { injectFault, stallAsync } from "../helpers/fault-injection.js";

/**
 * Start-up and hang faults against the real SoftHSM2 module: a key store whose token is not there when the
 * service starts is retried in the background and served once the token appears (no restart); an async
 * PKCS#11 call that never answers is cut off by the store's call timeout.
 */
const token = useTestToken("present");
afterAll(() => token.remove());
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code ?? String(e));
const services: LifecycleService[] = [];
afterAll(async () => {
  for (const s of services) await s.close().catch(() => undefined); // most tests close theirs already
});

async function until(what: () => boolean, ms = 5000): Promise<number> {
  const start = Date.now();
  while (!what()) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

describe("key store faults at start-up and hanging calls", () => {
  it("a store whose token is missing at start-up is FAILED, retried in the background, and CONNECTED once the token appears", async () => {
    // A second store on a token that does not exist yet, in the same SoftHSM2 token directory.
    const later = { ...token, label: "appears-later", remove: () => undefined };
    const attempts: string[] = [];
    const t = await openLifecycleService([token, later], { now: () => new Date() }, [], {
      reconnect: { initialMs: 50, maxMs: 200 },
      explain: explainConnectionFailure,
      observer: { reconnectAttempt: (_id, outcome) => attempts.push(outcome) },
    });
    services.push(t);
    expect(t.connections.get("present").connectionState).toBe("CONNECTED");
    expect(t.connections.get("appears-later")).toMatchObject({ connectionState: "FAILED", failure: { code: "CLUSTER_NOT_FOUND" } });
    await until(() => attempts.filter((a) => a === "failed").length >= 2);
    expect(t.connections.get("appears-later").connectionState).toBe("FAILED");
    expect(await code(t.service.createKey({ customKeyStoreId: "appears-later" }))).toBe("CustomKeyStoreInvalidStateException");

    // The token appears: SoftHSM2 initialises a token on its free slot while the service runs.
    const mod = loadModule(token.modulePath);
    const free = mod.C_GetSlotList(true).find((s) => (mod.C_GetTokenInfo(s).flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0)!;
    mod.C_InitToken(free, "so-pin-later", "appears-later".padEnd(32)); // labels are blank-padded
    const so = mod.C_OpenSession(free, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    mod.C_Login(so, pkcs11js.CKU_SO, "so-pin-later");
    mod.C_InitPIN(so, token.pin);
    mod.C_Logout(so);
    mod.C_CloseSession(so);

    const took = await until(() => t.connections.get("appears-later").connectionState === "CONNECTED").catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify(t.connections.get("appears-later"))}`); });
    expect(took).toBeLessThan(5000);
    expect(attempts.at(-1)).toBe("connected");
    const key = (await t.service.createKey({ customKeyStoreId: "appears-later" })).keyId;
    const blob = (await t.service.encrypt({ keyId: key, plaintext: Buffer.from("served without restart") })).ciphertextBlob;
    expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("served without restart");
    await t.close();
  });

  it("a store refused for its PIN at start-up is not retried: retrying could lock the user", async () => {
    const login = injectFault(loadModule(token.modulePath), "C_Login", 0xa0 /* CKR_PIN_INCORRECT */, 1_000_000);
    let t: LifecycleService;
    try {
      t = await openLifecycleService([token], { now: () => new Date() }, [], { reconnect: { initialMs: 20, maxMs: 40 }, explain: explainConnectionFailure });
      services.push(t);
      await new Promise((r) => setTimeout(r, 300)); // several backoff periods
      expect(login.fired).toBe(1);
    } finally {
      login.restore();
    }
    expect(t.connections.get("present")).toMatchObject({ connectionState: "FAILED", failure: { code: "INVALID_CREDENTIALS" } });
    expect(t.connections.reconnecting("present")).toBe(false);
    await t.close();
  });

  it("an async call that never answers is cut off by callTimeoutMs: KeyUnavailable, FAILED, reconnected without waiting for it", async () => {
    const faults: ConnectionFailure[] = [];
    const t = await openLifecycleService([token], { now: () => new Date() }, [], {
      reconnect: { initialMs: 50, maxMs: 200 },
      explain: explainConnectionFailure,
      storeOptions: { callTimeoutMs: 1000 },
      observer: { fault: (_id, failure) => faults.push(failure) },
    });
    try {
      const key = (await t.service.createKey({ keySpec: "ECC_NIST_P384", keyUsage: "SIGN_VERIFY" })).keyId;
      const sign = () => code(t.service.sign({ keyId: key, message: Buffer.from("m"), signingAlgorithm: "ECDSA_SHA_384" }));
      const stall = stallAsync(loadModule(token.modulePath), "C_SignAsync", 1);
      try {
        const start = Date.now();
        const stuck = sign();
        // While the call hangs, the store still serves: the stuck call holds one session of 4.
        expect(await sign()).toBe("ok");
        expect(await stuck).toBe("KeyUnavailableException");
        expect(Date.now() - start).toBeGreaterThanOrEqual(1000);
        expect(stall.stalled).toBe(1);
        expect(faults).toHaveLength(1);
        expect(faults[0]).toMatchObject({ code: "NETWORK_ERRORS", reason: "PKCS#11 sign did not answer within 1000 ms" });
        // The reconnect does not wait for the stuck call: its session is abandoned, not drained.
        await until(() => t.connections.get("present").connectionState === "CONNECTED");
        expect(await sign()).toBe("ok");
        // The device answers at last: the abandoned session finishes its call and is closed, nobody notices.
        stall.release();
        await new Promise((r) => setTimeout(r, 100));
        expect(await sign()).toBe("ok");
        expect(t.connections.get("present").connectionState).toBe("CONNECTED");
        expect(faults).toHaveLength(1);
      } finally {
        stall.restore();
        stall.release();
      }
    } finally {
      await t.close();
    }
  });
});
