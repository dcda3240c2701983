import { describe, expect, it } from "vitest";
import { type ConnectionFailure, KeyStoreConnections } from "../../src/kms/key-store-connections.js";
import type { KeyStore, KeyStoreRecord } from "../../src/kms/ports.js";

/**
 * The connection state machine on its own (the real-device behaviour is in test/hsm/faults.test.ts): stores
 * here are bare objects; what matters is when they are opened, closed, put live and taken offline.
 */
interface FakeStore {
  readonly store: KeyStore;
  readonly fault: (f: ConnectionFailure) => void;
  closed: boolean;
}

function harness(openResults: (() => "ok" | Error)[]) {
  const opened: FakeStore[] = [];
  const live = new Map<string, KeyStore>();
  const records: KeyStoreRecord[] = [];
  let calls = 0;
  const connections = new KeyStoreConnections(
    ["s1"],
    live,
    {
      open: async (id, onFault) => {
        const r = (openResults[calls++] ?? (() => "ok"))();
        if (r instanceof Error) throw r;
        const fake: FakeStore = { store: undefined as unknown as KeyStore, fault: onFault, closed: false };
        (fake as { store: KeyStore }).store = { id, close: async () => void (fake.closed = true) } as unknown as KeyStore;
        opened.push(fake);
        return fake.store;
      },
      explain: (err) => ({ code: (err as Error).message, reason: "test" }),
    },
    {
      getKeyStores: async () => records,
      putKeyStore: async (r) => void records.splice(0, records.length, r),
    },
    { now: () => new Date(0) },
    { info: () => undefined, warn: () => undefined, error: () => undefined },
    { reconnect: { initialMs: 1, maxMs: 4 } },
  );
  const settle = async (cond: () => boolean) => {
    for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 2));
    expect(cond()).toBe(true);
  };
  return { connections, opened, live, settle, openCalls: () => calls };
}

describe("KeyStoreConnections: device faults", () => {
  it("a fault takes the store out of the live map at once, closes it, and a new instance goes live", async () => {
    const h = harness([]);
    await h.connections.start();
    const first = h.opened[0]!;
    first.fault({ code: "NETWORK_ERRORS", reason: "x" });
    first.fault({ code: "INTERNAL_ERROR", reason: "a second call saw it too" }); // handled once
    expect(h.live.has("s1")).toBe(false);
    expect(h.connections.get("s1")).toMatchObject({ connectionState: "FAILED", failure: { code: "NETWORK_ERRORS" } });
    await h.settle(() => h.connections.get("s1").connectionState === "CONNECTED");
    expect(first.closed).toBe(true);
    expect(h.live.get("s1")).toBe(h.opened[1]!.store);
    // A late fault from the old instance changes nothing.
    first.fault({ code: "INTERNAL_ERROR", reason: "late" });
    expect(h.connections.get("s1").connectionState).toBe("CONNECTED");
  });

  it("retries failing attempts, and stops at a credential failure", async () => {
    const h = harness([() => "ok", () => new Error("INTERNAL_ERROR"), () => new Error("INTERNAL_ERROR"), () => new Error("INVALID_CREDENTIALS")]);
    await h.connections.start();
    h.opened[0]!.fault({ code: "CLUSTER_NOT_FOUND", reason: "x" });
    await h.settle(() => h.connections.get("s1").failure?.code === "INVALID_CREDENTIALS");
    await new Promise((r) => setTimeout(r, 30));
    expect(h.openCalls()).toBe(4);
    expect(h.connections.get("s1").connectionState).toBe("FAILED");
  });

  it("a store that faults while being reopened is not put live; the loop goes on", async () => {
    const h = harness([
      () => "ok",
      () => {
        // The instance about to be returned reports a fault before it is live.
        queueMicrotask(() => h.opened[1]!.fault({ code: "NETWORK_ERRORS", reason: "early" }));
        return "ok";
      },
    ]);
    await h.connections.start();
    h.opened[0]!.fault({ code: "NETWORK_ERRORS", reason: "x" });
    await h.settle(() => h.connections.get("s1").connectionState === "CONNECTED");
    expect(h.opened[1]!.closed).toBe(true);
    expect(h.live.get("s1")).toBe(h.opened[2]!.store);
  });

  it("DisconnectCustomKeyStore stops the reconnect attempts of a FAILED store", async () => {
    const h = harness([() => "ok", ...Array.from({ length: 1000 }, () => () => new Error("INTERNAL_ERROR"))]);
    await h.connections.start();
    h.opened[0]!.fault({ code: "NETWORK_ERRORS", reason: "x" });
    await h.settle(() => h.openCalls() >= 3);
    await h.connections.disconnect("s1");
    const calls = h.openCalls();
    await new Promise((r) => setTimeout(r, 30));
    expect(h.openCalls()).toBe(calls);
    expect(h.connections.get("s1").connectionState).toBe("DISCONNECTED");
  });

  it("a store that fails at start-up is FAILED and retried in the background with backoff, until it connects", async () => {
    const h = harness([() => new Error("CLUSTER_NOT_FOUND"), () => new Error("CLUSTER_NOT_FOUND"), () => "ok"]);
    await h.connections.start();
    expect(h.connections.get("s1")).toMatchObject({ connectionState: "FAILED", failure: { code: "CLUSTER_NOT_FOUND" } });
    expect(h.connections.reconnecting("s1")).toBe(true);
    await h.settle(() => h.connections.get("s1").connectionState === "CONNECTED");
    expect(h.openCalls()).toBe(3);
    expect(h.live.get("s1")).toBe(h.opened[0]!.store);
    expect(h.connections.reconnecting("s1")).toBe(false);
  });

  it("a store refused for its PIN at start-up is not retried (retries could lock the user)", async () => {
    for (const code of ["INVALID_CREDENTIALS", "USER_LOCKED_OUT"]) {
      const h = harness([() => new Error(code)]);
      await h.connections.start();
      await new Promise((r) => setTimeout(r, 30));
      expect(h.openCalls()).toBe(1);
      expect(h.connections.reconnecting("s1")).toBe(false);
      expect(h.connections.get("s1")).toMatchObject({ connectionState: "FAILED", failure: { code } });
    }
  });

  it("ConnectCustomKeyStore that fails is not retried in the background (as in AWS: disconnect, then connect again)", async () => {
    const h = harness([() => "ok", () => new Error("CLUSTER_NOT_FOUND")]);
    await h.connections.start();
    await h.connections.disconnect("s1");
    await h.connections.connect("s1");
    expect(h.connections.get("s1").connectionState).toBe("FAILED");
    await new Promise((r) => setTimeout(r, 30));
    expect(h.openCalls()).toBe(2);
  });
});
