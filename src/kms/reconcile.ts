import type { KeyMaterialRef, KeyStore, MetadataStore } from "./ports.js";
import type { KeyRecord } from "./types.js";

export interface ReconcileReport {
  /** Creating records whose creation never finished: removed with their material. */
  abortedCreations: string[];
  /** Token objects no record knows: relabelled, not destroyed (a restored database may still need them). */
  quarantined: KeyMaterialRef[];
  /** Records whose material is missing: marked Unavailable. */
  missingMaterial: string[];
  /** Tombstones of deleted keys whose token objects were still present (a crash mid-deletion): destroyed. */
  finishedDeletions: string[];
}

export interface ReconcileLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Start-up repair of what a crash between "write record" and "generate object" can leave behind. Runs before
 * the servers accept calls. A key is visible only when both its record and its material exist.
 */
export async function reconcile(
  metadata: MetadataStore,
  stores: ReadonlyMap<string, KeyStore>,
  log: ReconcileLog,
  records?: readonly KeyRecord[],
): Promise<ReconcileReport> {
  return reconcileStores(metadata, stores, log, false, records);
}

/**
 * Every record, read ahead of {@link reconcile} (the daemon reads them while its key stores open: start-up
 * time). Only valid while nothing writes to the store, which is the case before the daemon serves.
 */
export async function readAllRecords(metadata: MetadataStore): Promise<KeyRecord[]> {
  const all: KeyRecord[] = [];
  for await (const page of everyKey(metadata)) all.push(...page);
  return all;
}

/**
 * The same repair for one store joining at run time (ConnectCustomKeyStore, reconnect after a device fault),
 * before it is live, while the other stores serve. Only that store's records and objects are touched, and
 * Creating records are left alone: at run time one may be a CreateKey still in flight (its own failure path
 * removes the record; the next start-up reconciliation removes what a crash leaves).
 */
export async function reconcileStore(
  metadata: MetadataStore,
  keyStoreId: string,
  store: KeyStore,
  log: ReconcileLog,
): Promise<ReconcileReport> {
  return reconcileStores(metadata, new Map([[keyStoreId, store]]), log, true);
}

async function reconcileStores(
  metadata: MetadataStore,
  stores: ReadonlyMap<string, KeyStore>,
  log: ReconcileLog,
  runtime: boolean,
  records?: readonly KeyRecord[],
): Promise<ReconcileReport> {
  const report: ReconcileReport = { abortedCreations: [], quarantined: [], missingMaterial: [], finishedDeletions: [] };
  const known = new Map<string, number>(); // keyId -> current version, for keys that stay
  const present = new Set<string>(); // keyIds with objects on some connected store
  for (const store of stores.values()) for (const ref of await store.inventory()) present.add(ref.keyId);

  for await (const page of records ? [records] : everyKey(metadata)) {
    for (const key of page) {
      const store = stores.get(key.keyStoreId);
      if (runtime && !store) continue; // another store's key: not ours to judge now
      if (runtime && key.keyState === "Creating") {
        known.set(key.keyId, key.currentVersion); // its object (if made) is not a stray
        continue;
      }
      if (key.deletedAt) {
        // The reaper marks the record deleted first, then destroys: finish what a crash interrupted.
        if (store && present.has(key.keyId)) {
          for (let v = 1; v <= key.currentVersion; v++) await store.destroyKey({ keyId: key.keyId, version: v });
          report.finishedDeletions.push(key.keyId);
          log.warn({ keyId: key.keyId }, "finished destroying the token objects of a deleted key");
        }
        continue;
      }
      if (key.keyState === "Creating") {
        await store?.destroyKey({ keyId: key.keyId, version: key.currentVersion });
        await metadata.deleteKey(key.keyId);
        report.abortedCreations.push(key.keyId);
        log.warn({ keyId: key.keyId }, "removed a key whose creation never finished");
        continue;
      }
      known.set(key.keyId, key.currentVersion);
      if (!store) continue; // the store is not configured: its keys cannot be checked here
      if (key.keyState === "PendingImport") {
        // No material by definition: an object here is what a crash mid-import or mid-expiry left behind.
        const ref = { keyId: key.keyId, version: key.currentVersion };
        if (store.hasKey(ref)) {
          await store.destroyKey(ref);
          log.warn({ keyId: key.keyId }, "destroyed key material left behind by an interrupted import or expiry");
        }
        continue;
      }
      const missing = [];
      for (let v = 1; v <= key.currentVersion; v++) if (!store.hasKey({ keyId: key.keyId, version: v })) missing.push(v);
      if (missing.length > 0 && key.keyState !== "Unavailable") {
        await metadata.updateKeyState(key.keyId, key.keyState, "Unavailable");
        report.missingMaterial.push(key.keyId);
        log.error(
          { keyId: key.keyId, missingVersions: missing, previousState: key.keyState },
          "KEY MATERIAL MISSING from the token: key marked Unavailable",
        );
      }
    }
  }

  for (const store of stores.values()) {
    for (const ref of await store.inventory()) {
      const current = known.get(ref.keyId);
      if (current !== undefined && ref.version <= current) continue;
      await store.quarantineKey(ref);
      report.quarantined.push(ref);
      log.warn({ keyStoreId: store.id, ...ref }, "token object without a key record: quarantined");
    }
  }
  return report;
}

/** Every record, tombstones and unfinished creations included, a page at a time (in key id order). */
async function* everyKey(metadata: MetadataStore): AsyncGenerator<KeyRecord[]> {
  let afterKeyId: string | undefined;
  for (;;) {
    const page = await metadata.listKeys({ limit: 500, includeCreating: true, includeDeleted: true, afterKeyId });
    if (page.length === 0) return;
    yield page;
    afterKeyId = page[page.length - 1]!.keyId;
  }
}
