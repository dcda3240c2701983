import type { AuditSigner } from "../audit/signer.js";
import type { Config } from "../config/schema.js";
import { parsePkcs11Uri } from "../config/pkcs11-uri.js";
import { readPin } from "../config/pin.js";
import {
  Pkcs11KeyStore,
  type StorePreparation,
  closeModules,
  deviceThreadStats,
  explainConnectionFailure,
  explainDeviceFault,
  rvName,
} from "../hsm/index.js";
import { type ConnectionState, KeyStoreConnections, type KeyStoreOpener, type KeyStoreStatus } from "../kms/key-store-connections.js";
import type { KeyStore, MetadataStore } from "../kms/ports.js";
import { readAllRecords, reconcile, reconcileStore } from "../kms/reconcile.js";
import type { Metrics } from "../observability/metrics.js";
import { cachingMetadataStore } from "../store/caching-metadata-store.js";
import { SqliteMetadataStore } from "../store/sqlite-metadata-store.js";
import type { DaemonContext } from "./context.js";
import type { ServingHealth } from "./health.js";

// The daemon's one door to src/hsm/: the other stages reach the devices only through what this file exports.
export type { StorePreparation };

/** The daemon's storage: the metadata database and the configured key stores (PKCS#11 tokens). */
export interface DaemonStores {
  readonly metadata: MetadataStore;
  /** The live map the service reads: a store is in it exactly while it is CONNECTED. */
  readonly keyStores: Map<string, KeyStore>;
  readonly connections: KeyStoreConnections;
  /** The start-up worker's tokens (opened in a worker thread while the daemon loads), if `p11kms serve` started it. */
  readonly prepared: StorePreparation | undefined;
}

/** The metadata database, with the record cache in front when configured, and the (still empty) live key store map. */
export function openMetadata(storage: Config["storage"]): Pick<DaemonStores, "metadata" | "keyStores"> {
  const keyStores = new Map<string, KeyStore>();
  const sqlite = new SqliteMetadataStore(storage.sqlitePath);
  const metadata =
    storage.recordCacheMs > 0
      ? cachingMetadataStore(sqlite, {
          maxEntries: 10_000,
          ttlMs: storage.recordCacheMs,
          // Any change to a key (disable, deletion, rotation, material removed…) also drops its session copies.
          onWrite: (keyId) => {
            if (keyId === undefined) return;
            for (const ks of keyStores.values()) if (ks instanceof Pkcs11KeyStore) ks.dropCopies(keyId);
          },
        })
      : sqlite;
  return { metadata, keyStores };
}

/** Connection management of the configured key stores, wired to the metrics and `health`; nothing is opened yet. */
export function wireKeyStores(
  ctx: DaemonContext,
  { metadata, keyStores }: Pick<DaemonStores, "metadata" | "keyStores">,
  prepared: StorePreparation | undefined,
  health: ServingHealth,
): DaemonStores {
  const { config, log, metrics } = ctx;
  const connections: KeyStoreConnections = new KeyStoreConnections(
    config.keyStores.map((k) => k.id),
    keyStores,
    keyStoreOpener(ctx, prepared),
    metadata,
    ctx.clock,
    log,
    {
      reconcile: async (id, store) => {
        const r = await reconcileStore(metadata, id, store, log);
        log.info(
          { keyStoreId: id, quarantined: r.quarantined.length, missingMaterial: r.missingMaterial.length, finishedDeletions: r.finishedDeletions.length },
          "key store reconciliation finished",
        );
      },
      observer: {
        stateChanged: (status) => {
          stateMetric(metrics, status);
          health.update(connections);
        },
        fault: (id, failure) => metrics.keyStoreFaults.inc({ key_store: id, code: failure.code }),
        reconnectAttempt: (id, outcome) => metrics.reconnectAttempts.inc({ key_store: id, outcome }),
      },
    },
  );
  for (const ks of config.keyStores) {
    metrics.watchPool(ks.id, () => {
      const store = keyStores.get(ks.id);
      return store instanceof Pkcs11KeyStore ? store.usage() : undefined;
    });
  }
  metrics.watchDeviceThread(() => deviceThreadStats());
  return { metadata, keyStores, connections, prepared };
}

/** How a key store is opened: its token, with the start-up worker's probe and scan the first time. */
function keyStoreOpener({ config, log, metrics }: DaemonContext, prepared: StorePreparation | undefined): KeyStoreOpener {
  return {
    // The PIN is read afresh on every connection (a rotated PIN file takes effect on ConnectCustomKeyStore).
    open: async (id, onFault) => {
      const ks = config.keyStores.find((k) => k.id === id)!;
      const uri = parsePkcs11Uri(ks.uri);
      const pre = await prepared?.take(ks.id); // the start-up worker's probe and scan (first open only)
      const store = Pkcs11KeyStore.open(
        ks.id,
        {
          modulePath: uri.modulePath,
          tokenLabel: uri.token,
          pin: readPin(uri.pinSource, config.baseDir),
          maxSessions: ks.maxSessions,
          callTimeoutMs: ks.callTimeoutMs,
          sessionCopies: ks.sessionCopies,
          rsaOaepSha256Fallback: ks.rsaOaepSha256Fallback,
          importOaepSha256Fallback: ks.importOaepSha256Fallback,
          deviceThread: ks.deviceThread,
        },
        {
          call: metrics.hsmObserver(ks.id),
          error: (_op, rv, cls) => metrics.hsmErrors.inc({ key_store: ks.id, class: cls, rv: rvName(rv) }),
          tokenFault: (op, rv, cause) => onFault(explainDeviceFault(op, rv, cause)),
          sessionRetried: (rv, recovered) => {
            metrics.sessionRetries.inc({ key_store: ks.id, outcome: recovered ? "recovered" : "failed" });
            if (recovered) log.warn({ keyStoreId: ks.id, rv: rvName(rv) }, "PKCS#11 session lost; the call succeeded on a fresh session");
          },
        },
        pre,
      );
      log.info(
        {
          keyStoreId: ks.id,
          token: uri.token,
          module: uri.modulePath,
          keySpecs: store.capabilities.keySpecs,
          rsaOaepSha256: store.capabilities.rsaOaepSha256,
          importOaepSha256: store.unwrapPath("RSAES_OAEP_SHA_256") ?? "unsupported",
          prepared: pre !== undefined,
        },
        "key store opened",
      );
      return store;
    },
    explain: explainConnectionFailure,
  };
}

/**
 * Start-up stage 1: opens the key stores and repairs what a crash left behind (reconciliation), reading every
 * record while the start-up worker opens the tokens. Throws when no store can serve and none will come.
 */
export async function openStores({ metadata, keyStores, connections, prepared }: DaemonStores, { log }: DaemonContext): Promise<void> {
  // WARNING: read while the start-up worker opens the tokens (the main thread would be idle); nothing writes yet.
  // Only valid before anything is served (reconcile() trusts these records to be current).
  const records = await readAllRecords(metadata);
  await connections.start();
  // WARNING: only now, once every store has its own sessions (or gave up on the worker's): the worker may go.
  void prepared?.release(); // the main thread has its own sessions now
  const failed = connections.list().filter((s) => s.connectionState === "FAILED");
  if (keyStores.size === 0 && failed.length > 0 && !failed.some((s) => connections.reconnecting(s.keyStoreId))) {
    // Nothing to serve with, and nothing will come (a wrong or locked PIN is not retried): fail loudly
    // rather than answer every call with KMSInvalidStateException. A store being retried may come later.
    const reasons = connections.list().map((s) => `${s.keyStoreId}: ${s.failure?.reason ?? s.connectionState}`);
    throw new Error(`no key store could be connected (${reasons.join("; ")})`);
  }
  const report = await reconcile(metadata, keyStores, log, records);
  log.info(
    {
      abortedCreations: report.abortedCreations.length,
      quarantined: report.quarantined.length,
      missingMaterial: report.missingMaterial.length,
      finishedDeletions: report.finishedDeletions.length,
    },
    "reconciliation finished",
  );
}

/** The audit signing key lives in the default key store's token (looked up per use: the store may reconnect). */
export function auditSignerOf(keyStores: ReadonlyMap<string, KeyStore>, id: string): () => AuditSigner | undefined {
  const signers = new WeakMap<Pkcs11KeyStore, AuditSigner>();
  return () => {
    const store = keyStores.get(id);
    if (!(store instanceof Pkcs11KeyStore)) return undefined;
    let signer = signers.get(store);
    if (!signer) signers.set(store, (signer = store.auditSigner()));
    return signer;
  };
}

/** Closes the key stores, then the metadata database, then the PKCS#11 modules (the last step of every shutdown). */
export async function closeStores({ metadata, connections, prepared }: DaemonStores, { log }: Pick<DaemonContext, "log">): Promise<void> {
  // WARNING: in this order. The module is finalised last: never while a store, or the start-up worker, may
  // still be inside it.
  await connections.closeAll();
  await metadata.close().catch(() => undefined);
  await prepared?.release(); // never C_Finalize while the worker may be inside the module
  const left = closeModules();
  if (left.length > 0) log.warn({ modules: left }, "PKCS#11 calls still running at exit (a device that stopped answering): module not finalised");
}

const STATES: readonly ConnectionState[] = ["CONNECTED", "CONNECTING", "DISCONNECTED", "DISCONNECTING", "FAILED"];

function stateMetric(metrics: Metrics, status: KeyStoreStatus): void {
  for (const state of STATES) metrics.keyStoreState.set({ key_store: status.keyStoreId, state }, state === status.connectionState ? 1 : 0);
}
