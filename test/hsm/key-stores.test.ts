import { afterAll, describe, expect, it } from "vitest";
import { MovableClock, openLifecycleService } from "../helpers/lifecycle.js";
import { addTestToken, useTestToken } from "../helpers/softhsm.js";
import { TokenInspector } from "../helpers/token-objects.js";

const first = useTestToken("store-one");
const second = addTestToken(first, "store-two");
afterAll(() => first.remove());
const clock = new MovableClock();
const code = (p: Promise<unknown>) => p.then(() => "ok", (e: { code?: string }) => e.code);

describe("several key stores (two SoftHSM2 tokens)", () => {
  it("creates keys in the named store, reports connection states, and refuses keys of a disconnected store", async () => {
    let t = await openLifecycleService([first, second], clock, ["ghost"]);
    const stores = await t.service.describeCustomKeyStores({});
    expect(stores.keyStores.map((s) => [s.keyStoreId, s.connectionState])).toEqual([
      ["ghost", "FAILED"],
      ["store-one", "CONNECTED"],
      ["store-two", "CONNECTED"],
    ]);
    expect(stores.keyStores[0]!.failure).toEqual({ code: "INTERNAL_ERROR", reason: "no token labelled 'ghost'" });

    const inOne = (await t.service.createKey({})).keyId;
    const inTwo = await t.service.createKey({ customKeyStoreId: "store-two" });
    expect(inTwo.customKeyStoreId).toBe("store-two");
    expect(new TokenInspector(second).secretKeys().map((k) => k.label)).toEqual([`p11kms:${inTwo.keyId}:v1`]);
    expect(await code(t.service.createKey({ customKeyStoreId: "nope" }))).toBe("CustomKeyStoreNotFoundException");
    expect(await code(t.service.createKey({ customKeyStoreId: "ghost" }))).toBe("CustomKeyStoreInvalidStateException");
    const blob = (await t.service.encrypt({ keyId: inTwo.keyId, plaintext: Buffer.from("two") })).ciphertextBlob;

    await t.service.disconnectCustomKeyStore({ customKeyStoreId: "store-two" });
    expect(await code(t.service.disconnectCustomKeyStore({ customKeyStoreId: "store-two" }))).toBe("CustomKeyStoreInvalidStateException");
    expect((await t.service.describeKey({ keyId: inTwo.keyId })).keyState).toBe("Unavailable");
    expect(await code(t.service.decrypt({ ciphertextBlob: blob }))).toBe("KMSInvalidStateException");
    expect(await code(t.service.encrypt({ keyId: inTwo.keyId, plaintext: Buffer.from("x") }))).toBe("KMSInvalidStateException");
    expect(await code(t.service.createKey({ customKeyStoreId: "store-two" }))).toBe("CustomKeyStoreInvalidStateException");
    expect(await code(t.service.generateRandom({ numberOfBytes: 8, customKeyStoreId: "store-two" }))).toBe("CustomKeyStoreInvalidStateException");
    expect((await t.service.encrypt({ keyId: inOne, plaintext: Buffer.from("one") })).keyId).toContain(inOne);
    await t.close();

    // Disconnected on purpose stays disconnected across a restart.
    t = await openLifecycleService([first, second], clock);
    expect((await t.service.describeCustomKeyStores({ customKeyStoreId: "store-two" })).keyStores[0]!.connectionState).toBe("DISCONNECTED");
    await t.service.connectCustomKeyStore({ customKeyStoreId: "store-two" });
    await t.service.connectCustomKeyStore({ customKeyStoreId: "store-two" }); // connecting a connected store is a no-op
    expect((await t.service.describeKey({ keyId: inTwo.keyId })).keyState).toBe("Enabled");
    expect((await t.service.decrypt({ ciphertextBlob: blob })).plaintext.toString()).toBe("two");
    // A disabled key stays disabled through a disconnect/connect cycle.
    await t.service.disableKey({ keyId: inTwo.keyId });
    await t.service.disconnectCustomKeyStore({ customKeyStoreId: "store-two" });
    await t.service.connectCustomKeyStore({ customKeyStoreId: "store-two" });
    expect((await t.service.describeKey({ keyId: inTwo.keyId })).keyState).toBe("Disabled");
    expect(await code(t.service.describeCustomKeyStores({ customKeyStoreId: "nope" }))).toBe("CustomKeyStoreNotFoundException");
    const paged = await t.service.describeCustomKeyStores({ limit: 1 });
    expect(paged.truncated).toBe(true);
    expect((await t.service.describeCustomKeyStores({ limit: 1, marker: paged.nextMarker })).keyStores[0]!.keyStoreId).toBe("store-two");
    await t.close();
  });

  it("a FAILED store must be disconnected before it is connected again", async () => {
    const t = await openLifecycleService([first], clock, ["ghost"]);
    expect(await code(t.service.connectCustomKeyStore({ customKeyStoreId: "ghost" }))).toBe("CustomKeyStoreInvalidStateException");
    await t.service.disconnectCustomKeyStore({ customKeyStoreId: "ghost" });
    await t.service.connectCustomKeyStore({ customKeyStoreId: "ghost" });
    expect(t.connections.get("ghost").connectionState).toBe("FAILED");
    await t.close();
  });
});
