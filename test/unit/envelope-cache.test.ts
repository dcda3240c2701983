import { describe, expect, it } from "vitest";
import { CachingMaterialsProvider } from "../../packages/client/src/envelope/cache.js";
import { Envelope } from "../../packages/client/src/envelope/envelope.js";
import { LocalKeyring } from "../helpers/local-keyring.js";

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const ctx = { app: "a" };

describe("data-key cache", () => {
  it("is off by default: every message gets a fresh data key", async () => {
    const k = new LocalKeyring();
    const env = new Envelope({ keyring: k });
    for (let i = 0; i < 3; i++) await env.encrypt(Buffer.from("x"), { context: ctx });
    expect(k.encryptCalls).toBe(3);
  });

  it("reuses a data key up to maxMessages, then generates a new one", async () => {
    const k = new LocalKeyring();
    const env = new Envelope({ keyring: k, cache: { maxAgeMs: 60_000, maxMessages: 3 } });
    const messages = [];
    for (let i = 0; i < 7; i++) messages.push(await env.encrypt(Buffer.from(`m${i}`), { context: ctx }));
    expect(k.encryptCalls).toBe(3); // messages 1-3, 4-6, 7
    for (const [i, m] of messages.entries()) expect((await env.decrypt(m)).plaintext.toString()).toBe(`m${i}`);
    expect(k.decryptCalls).toBe(3); // decryption is cached by encrypted data key
  });

  it("reuses a data key up to maxBytes", async () => {
    const k = new LocalKeyring();
    const env = new Envelope({ keyring: k, cache: { maxAgeMs: 60_000, maxBytes: 100 } });
    await env.encrypt(Buffer.alloc(60), { context: ctx });
    await env.encrypt(Buffer.alloc(40), { context: ctx }); // 100: still within
    expect(k.encryptCalls).toBe(1);
    await env.encrypt(Buffer.alloc(1), { context: ctx }); // 101: over
    expect(k.encryptCalls).toBe(2);
    await env.encrypt(Buffer.alloc(101), { context: ctx }); // larger than the limit on its own: never cached
    await env.encrypt(Buffer.alloc(1), { context: ctx });
    expect(k.encryptCalls).toBe(3);
  });

  it("expires data keys after maxAgeMs", async () => {
    const k = new LocalKeyring();
    const c = clock();
    const env = new Envelope({ keyring: k, cache: { maxAgeMs: 1000, now: c.now } });
    await env.encrypt(Buffer.from("x"), { context: ctx });
    c.advance(999);
    await env.encrypt(Buffer.from("x"), { context: ctx });
    expect(k.encryptCalls).toBe(1);
    c.advance(1);
    await env.encrypt(Buffer.from("x"), { context: ctx });
    expect(k.encryptCalls).toBe(2);
  });

  it("keys the cache by encryption context", async () => {
    const k = new LocalKeyring();
    const env = new Envelope({ keyring: k, cache: { maxAgeMs: 60_000 } });
    await env.encrypt(Buffer.from("x"), { context: { app: "a" } });
    await env.encrypt(Buffer.from("x"), { context: { app: "b" } });
    await env.encrypt(Buffer.from("x"), { context: { app: "a" } });
    expect(k.encryptCalls).toBe(2);
  });

  it("bypasses the cache for streams of undeclared length", async () => {
    const k = new LocalKeyring();
    const env = new Envelope({ keyring: k, cache: { maxAgeMs: 60_000 } });
    for (let i = 0; i < 2; i++) {
      const s = env.encryptStream({ context: ctx });
      s.resume();
      s.end(Buffer.from("x"));
      await new Promise((r) => s.on("end", r));
    }
    expect(k.encryptCalls).toBe(2);
  });

  it("evicts least recently used entries beyond its capacity and zeroes evicted keys", async () => {
    const k = new LocalKeyring();
    const p = new CachingMaterialsProvider(k, { maxAgeMs: 60_000, capacity: 2 });
    const first = await p.encryptionMaterials({ context: { n: "1" }, suite: 1, plaintextLength: 1 });
    await p.encryptionMaterials({ context: { n: "2" }, suite: 1, plaintextLength: 1 });
    await p.encryptionMaterials({ context: { n: "1" }, suite: 1, plaintextLength: 1 }); // 1 is now most recent
    await p.encryptionMaterials({ context: { n: "3" }, suite: 1, plaintextLength: 1 }); // evicts 2
    expect(p.size).toBe(2);
    expect(k.encryptCalls).toBe(3);
    await p.encryptionMaterials({ context: { n: "1" }, suite: 1, plaintextLength: 1 });
    expect(k.encryptCalls).toBe(3);
    // Callers get copies: zeroing one does not corrupt the cache.
    first.dataKey.fill(0);
    const again = await p.encryptionMaterials({ context: { n: "1" }, suite: 1, plaintextLength: 1 });
    expect(again.dataKey.equals(Buffer.alloc(32))).toBe(false);
    p.clear();
    expect(p.size).toBe(0);
  });

  it("requires a positive maxAgeMs", () => {
    expect(() => new CachingMaterialsProvider(new LocalKeyring(), { maxAgeMs: 0 })).toThrow(RangeError);
  });
});
