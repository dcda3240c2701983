import type { MetadataStore } from "../kms/ports.js";
import type { AliasRecord, KeyRecord } from "../kms/types.js";

export interface RecordCacheOptions {
  /** Most records (and, separately, aliases) kept; the least recently used go first. */
  readonly maxEntries: number;
  /**
   * How long a cached record may be served, in ms. Writes through this process invalidate at once; the age
   * bound is for writes made by another replica sharing the database, which this one cannot see.
   */
  readonly ttlMs: number;
  /** Called after every write with the key it concerned (undefined when the write names no single key). */
  readonly onWrite?: (keyId: string | undefined) => void;
  readonly now?: () => number;
}

export const DEFAULT_RECORD_CACHE: RecordCacheOptions = { maxEntries: 10_000, ttlMs: 2_000 };

/**
 * Methods that only read and are not cached. Every method not named here or in the cached pair is treated
 * as a write and invalidates the whole cache: a write method added to the port later is then safe by
 * default, and writes are control-plane calls, rare next to Encrypt/Decrypt/Sign.
 */
const PASS_THROUGH_READS = new Set<string>([
  "listKeys",
  "getTags",
  "listTags",
  "listAliases",
  "getRotation",
  "listVersions",
  "countVersions",
  "dueRotations",
  "dueDeletions",
  "dueMaterialExpirations",
  "getImport",
  "getKeyStores",
  // Authorization reads them per request (grantsFor whenever the key policy alone does not allow): treated
  // as writes they would empty the cache, and drop the key's session copies, on every such call.
  "getKeyPolicy",
  "getGrant",
  "grantsFor",
  "listGrants",
  "listRetirableGrants",
]);

interface Entry<T> {
  readonly value: T;
  readonly at: number;
}

/** Hit/miss counters, for tests and the metrics endpoint. */
export interface RecordCacheStats {
  hits: number;
  misses: number;
  invalidations: number;
}

/**
 * A read-through cache of key records and aliases in front of a MetadataStore: the hot path (Encrypt,
 * Decrypt, Sign…) reads the same few records thousands of times a second, and the SQLite lookup with its
 * row-to-record conversion cost ~9 µs of the event loop per call (docs/benchmarks.md).
 *
 * Correctness on this replica: every write clears the cache before it starts and again after it settles,
 * and a read that raced with a write (the generation changed while it was in flight) is returned but not
 * cached. So a state change made here is visible to the very next request. Other replicas see it within
 * `ttlMs` (docs/operations.md).
 *
 * Only found records are cached: a key created by another replica is never hidden behind a cached miss.
 */
export function cachingMetadataStore(
  inner: MetadataStore,
  options: RecordCacheOptions = DEFAULT_RECORD_CACHE,
): MetadataStore & { readonly recordCacheStats: RecordCacheStats } {
  const now = options.now ?? (() => performance.now());
  const keys = new Map<string, Entry<KeyRecord>>();
  const aliases = new Map<string, Entry<AliasRecord>>();
  const stats: RecordCacheStats = { hits: 0, misses: 0, invalidations: 0 };
  let generation = 0;

  const invalidate = () => {
    generation++;
    stats.invalidations++;
    keys.clear();
    aliases.clear();
  };

  function cachedRead<T>(map: Map<string, Entry<T>>, load: (id: string) => Promise<T | undefined>) {
    return async (id: string): Promise<T | undefined> => {
      const hit = map.get(id);
      if (hit !== undefined) {
        if (now() - hit.at < options.ttlMs) {
          // Re-insert: Map keeps insertion order, so the first key is the least recently used.
          map.delete(id);
          map.set(id, hit);
          stats.hits++;
          return hit.value;
        }
        map.delete(id);
      }
      stats.misses++;
      const started = generation;
      const at = now();
      const value = await load(id);
      if (value !== undefined && generation === started) {
        map.set(id, { value, at });
        if (map.size > options.maxEntries) map.delete(map.keys().next().value!);
      }
      return value;
    };
  }

  const getKey = cachedRead(keys, (id) => inner.getKey(id));
  const getAlias = cachedRead(aliases, (name) => inner.getAlias(name));

  // The wrapped methods are made once per property, not on every access (reads pass through per request).
  const wrapped = new Map<string | symbol, { readonly of: unknown; readonly fn: unknown }>();
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === "getKey") return getKey;
      if (prop === "getAlias") return getAlias;
      if (prop === "recordCacheStats") return stats;
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      const made = wrapped.get(prop);
      if (made?.of === value) return made.fn; // a method replaced on the store later gets wrapped anew
      const fn =
        typeof prop !== "string" || PASS_THROUGH_READS.has(prop)
          ? value.bind(target)
          : async (...args: unknown[]) => {
              invalidate();
              try {
                return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
              } finally {
                invalidate();
                options.onWrite?.(keyIdOf(args[0]));
              }
            };
      wrapped.set(prop, { of: value, fn });
      return fn;
    },
  }) as MetadataStore & { readonly recordCacheStats: RecordCacheStats };
}

/** The key a write concerns, from its first argument (a key id, or a record carrying one). */
function keyIdOf(arg: unknown): string | undefined {
  if (typeof arg === "string") return arg;
  if (typeof arg === "object" && arg !== null) {
    const o = arg as { keyId?: unknown; record?: { keyId?: unknown } };
    if (typeof o.keyId === "string") return o.keyId;
    if (typeof o.record?.keyId === "string") return o.record.keyId;
  }
  return undefined;
}
