import { join } from "node:path";
import { Pkcs11KeyStore } from "../../src/hsm/index.js";
import type { TokenOptions } from "../../src/hsm/runtime/token.js";
import type { LifecycleEvents, ServiceDeps } from "../../src/kms/deps.js";
import { explainDeviceFault } from "../../src/hsm/runtime/connection-failure.js";
import { type ConnectionOptions, KeyStoreConnections, type KeyStoreOpener } from "../../src/kms/key-store-connections.js";
import { reconcileStore } from "../../src/kms/reconcile.js";
import { LifecycleJobs } from "../../src/kms/lifecycle-jobs.js";
import type { Clock, KeyStore } from "../../src/kms/ports.js";
import { KmsService } from "../../src/kms/service.js";
import { type RecordCacheOptions, cachingMetadataStore } from "../../src/store/caching-metadata-store.js";
import { SqliteMetadataStore } from "../../src/store/sqlite-metadata-store.js";
import { PARTITION } from "./service.js";
import type { TestToken } from "./softhsm.js";
import { INTERNAL_CALLER } from "../../src/kms/caller.js";

/** A clock tests move by hand: deadlines pass without sleeping. */
export class MovableClock implements Clock {
  constructor(public ms = Date.parse("2030-01-01T00:00:00Z")) {}
  now(): Date {
    return new Date(this.ms);
  }
  advanceDays(days: number): void {
    this.ms += days * 86_400_000;
  }
}

/** Every lifecycle event the service reported, by kind. */
export interface RecordedEvents {
  pendingDeletionUse: Parameters<LifecycleEvents["pendingDeletionUse"]>[0][];
  keyDeleted: Parameters<LifecycleEvents["keyDeleted"]>[0][];
  keyRotated: Parameters<LifecycleEvents["keyRotated"]>[0][];
  jobDeferred: Parameters<LifecycleEvents["jobDeferred"]>[0][];
}

export interface LifecycleService {
  service: KmsService;
  deps: ServiceDeps;
  metadata: SqliteMetadataStore;
  jobs: LifecycleJobs;
  connections: KeyStoreConnections;
  events: RecordedEvents;
  /** Closes the stores and the database (a "restart" opens a new one on the same token and file). */
  close(): Promise<void>;
}

/**
 * A real service as the daemon composes it — key store connections, lifecycle jobs, event sink — over real
 * SoftHSM2 tokens (store ids = token labels; the first is the default) and a SQLite file in the first
 * token's directory. Opening it again on the same tokens is a restart.
 */
export async function openLifecycleService(
  tokens: TestToken[],
  clock: Clock,
  extraStoreIds: string[] = [],
  options: Omit<ConnectionOptions, "reconcile"> & {
    explain?: KeyStoreOpener["explain"];
    /** Key store settings beyond the token (the OAEP-SHA-256 fallbacks, the call timeout). */
    storeOptions?: Pick<TokenOptions, "rsaOaepSha256Fallback" | "importOaepSha256Fallback" | "callTimeoutMs">;
    /** The record cache in front of SQLite, as the daemon composes it (its writes drop session copies). */
    recordCache?: Omit<RecordCacheOptions, "onWrite">;
  } = {},
): Promise<LifecycleService> {
  const metadata = new SqliteMetadataStore(join(tokens[0]!.dir, "p11kms.db"));
  const live = new Map<string, KeyStore>();
  // As the daemon composes it: the record cache in front of SQLite, its writes dropping session copies.
  const front = options.recordCache
    ? cachingMetadataStore(metadata, { ...options.recordCache, onWrite: (keyId) => keyId && dropCopies(live, keyId) })
    : metadata;
  const byId = new Map(tokens.map((t) => [t.label, t]));
  const quiet = { info: () => undefined, error: () => undefined };
  const connections = new KeyStoreConnections(
    [...byId.keys(), ...extraStoreIds],
    live,
    {
      open: async (id, onFault) => {
        const t = byId.get(id);
        if (!t) throw new Error(`no token labelled '${id}'`);
        return Pkcs11KeyStore.open(
          id,
          { modulePath: t.modulePath, tokenLabel: t.label, pin: t.pin, maxSessions: 4, ...options.storeOptions },
          { tokenFault: (op, rv, cause) => onFault(explainDeviceFault(op, rv, cause)) },
        );
      },
      explain: options.explain ?? ((err) => ({ code: "INTERNAL_ERROR", reason: (err as Error).message })),
    },
    front,
    clock,
    quiet,
    { reconnect: options.reconnect, observer: options.observer, reconcile: async (id, store) => void (await reconcileStore(front, id, store, { warn: () => undefined, error: () => undefined })) },
  );
  await connections.start();
  const events: RecordedEvents = { pendingDeletionUse: [], keyDeleted: [], keyRotated: [], jobDeferred: [] };
  const deps: ServiceDeps = {
    metadata: front,
    keyStores: live,
    defaultKeyStoreId: tokens[0]!.label,
    clock,
    partition: PARTITION,
    connections,
    events: {
      pendingDeletionUse: (e) => events.pendingDeletionUse.push(e),
      keyDeleted: (e) => events.keyDeleted.push(e),
      keyRotated: (e) => events.keyRotated.push(e),
      jobDeferred: (e) => events.jobDeferred.push(e),
    },
  };
  const jobs = new LifecycleJobs(deps);
  return {
    service: new KmsService(deps, INTERNAL_CALLER),
    deps,
    metadata,
    jobs,
    connections,
    events,
    async close() {
      await jobs.stop();
      await connections.closeAll();
      await metadata.close();
    },
  };
}

function dropCopies(stores: Map<string, KeyStore>, keyId: string): void {
  for (const s of stores.values()) if (s instanceof Pkcs11KeyStore) s.dropCopies(keyId);
}
