import { describe, expect, it } from "vitest";
import type { MetadataStore } from "../../src/kms/ports.js";
import type { KeyRecord } from "../../src/kms/types.js";
import { cachingMetadataStore } from "../../src/store/caching-metadata-store.js";

/** The cache's own rules, on a hand-driven store whose reads settle when the test says so. */
function fakeStore() {
  const records = new Map<string, KeyRecord>();
  const pending: (() => void)[] = [];
  let reads = 0;
  const inner = {
    getKey: (id: string) =>
      new Promise<KeyRecord | undefined>((resolve) => {
        reads++;
        const value = records.get(id); // read now, delivered later: a slow networked store
        pending.push(() => resolve(value));
      }),
    getAlias: async () => undefined,
    listKeys: async () => [],
    transitionKey: async (id: string, _from: string, to: string) => {
      records.set(id, { ...records.get(id)!, keyState: to } as KeyRecord);
      return true;
    },
    someFutureWrite: async () => undefined,
  };
  return { inner: inner as unknown as MetadataStore, records, pending, reads: () => reads };
}

const record = (keyId: string): KeyRecord =>
  ({ keyId, keyStoreId: "s", description: "", keySpec: "SYMMETRIC_DEFAULT", keyUsage: "ENCRYPT_DECRYPT", origin: "AWS_KMS", keyState: "Enabled", creationDate: new Date(0), currentVersion: 1 }) as KeyRecord;

async function read(cache: MetadataStore, f: ReturnType<typeof fakeStore>, id: string) {
  const p = cache.getKey(id);
  await Promise.resolve();
  f.pending.splice(0).forEach((r) => r());
  return p;
}

describe("cachingMetadataStore", () => {
  it("does not keep a read that was in flight while a write happened", async () => {
    const f = fakeStore();
    f.records.set("k", record("k"));
    const written: (string | undefined)[] = [];
    const cache = cachingMetadataStore(f.inner, { maxEntries: 10, ttlMs: 60_000, onWrite: (id) => written.push(id) });
    const slow = cache.getKey("k"); // reads Enabled, not yet delivered
    await cache.transitionKey("k", "Enabled", "Disabled", undefined);
    f.pending.splice(0).forEach((r) => r());
    expect((await slow)?.keyState).toBe("Enabled");
    expect((await read(cache, f, "k"))?.keyState).toBe("Disabled");
    expect(written).toEqual(["k"]);
  });

  it("treats any method it does not know as a write, and known reads as reads", async () => {
    const f = fakeStore();
    f.records.set("k", record("k"));
    const cache = cachingMetadataStore(f.inner, { maxEntries: 10, ttlMs: 60_000 });
    await read(cache, f, "k");
    await read(cache, f, "k");
    expect(f.reads()).toBe(1);
    await cache.listKeys({ limit: 1 });
    await read(cache, f, "k");
    expect(f.reads()).toBe(1);
    await (cache as unknown as { someFutureWrite(): Promise<void> }).someFutureWrite();
    await read(cache, f, "k");
    expect(f.reads()).toBe(2);
  });

  it("ages entries out after ttlMs, evicts the least recently used beyond maxEntries, never caches a miss", async () => {
    const f = fakeStore();
    let now = 0;
    for (const id of ["a", "b", "c"]) f.records.set(id, record(id));
    const cache = cachingMetadataStore(f.inner, { maxEntries: 2, ttlMs: 1000, now: () => now });
    await read(cache, f, "a");
    await read(cache, f, "b");
    await read(cache, f, "a"); // a is now the most recently used
    await read(cache, f, "c"); // evicts b
    const before = f.reads();
    await read(cache, f, "a");
    expect(f.reads()).toBe(before);
    await read(cache, f, "b");
    expect(f.reads()).toBe(before + 1);
    now += 1001;
    await read(cache, f, "b");
    expect(f.reads()).toBe(before + 2);
    expect(await read(cache, f, "missing")).toBeUndefined();
    await read(cache, f, "missing");
    expect(f.reads()).toBe(before + 4);
  });
});

describe("cachingMetadataStore and the port", () => {
  it("knows every read of the MetadataStore port as a read (a read taken for a write would empty the cache per call)", async () => {
    const { readFileSync } = await import("node:fs");
    const ports = readFileSync(new URL("../../src/kms/ports.ts", import.meta.url), "utf8");
    const start = ports.indexOf("export interface MetadataStore");
    const methods = new Set<string>();
    // Every method of the metadata interfaces (MetadataStore and the *Metadata ones it extends).
    for (const block of ports.slice(start).split(/^export interface /m)) {
      if (!/^(MetadataStore|[A-Za-z]+Metadata)\b/.test(block)) continue;
      for (const m of block.matchAll(/^ {2}([a-zA-Z]+)\(/gm)) methods.add(m[1]!);
    }
    const writes = new Set(["insertKey", "updateKeyState", "deleteKey", "close", "completeImport", "updateImportExpiry", "removeMaterial", "transitionKey", "markDeleted", "updateDescription", "putTags", "removeTags", "insertAlias", "retargetAlias", "deleteAlias", "setRotation", "addVersion", "putKeyStore", "putKeyPolicy", "insertGrant", "deleteGrant"]);
    expect(methods.size).toBeGreaterThan(30);
    let invalidations = 0;
    const inner = Object.fromEntries([...methods].map((m) => [m, async () => undefined])) as unknown as MetadataStore;
    const cache = cachingMetadataStore(inner, { maxEntries: 10, ttlMs: 1000, onWrite: () => invalidations++ });
    for (const m of methods) {
      const before = invalidations;
      await (cache as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[m]!("k");
      expect({ method: m, invalidates: invalidations > before }).toEqual({ method: m, invalidates: writes.has(m) });
    }
  });
});
