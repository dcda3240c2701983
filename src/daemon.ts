import { readFileSync } from "node:fs";
import type { Server as HttpServer } from "node:http";
import { loadAccessKeys } from "./api/aws/access-keys.js";
import { startAwsServer } from "./api/aws/server.js";
import { SigV4Verifier } from "./api/aws/sigv4.js";
import { type GrpcServer, KMS_SERVICE_NAME, loadReflection, startGrpcServer } from "./api/grpc/server.js";
import { quotaGateFor } from "./api/quota-gate.js";
import { auditedService } from "./audit/auditor.js";
import { withInternalAudit } from "./audit/internal-events.js";
import { type AuditRuntime, startAudit } from "./audit/setup.js";
import type { AuditSigner } from "./audit/signer.js";
import type { Config } from "./config/schema.js";
import { parsePkcs11Uri } from "./config/pkcs11-uri.js";
import { explainConnectionFailure, explainDeviceFault } from "./hsm/connection-failure.js";
import { deviceThreadStats } from "./hsm/device-thread.js";
import { closeModules } from "./hsm/module.js";
import type { StorePreparation } from "./hsm/prepared-open.js";
import { readPin } from "./hsm/pin.js";
import { rvName } from "./hsm/return-values.js";
import { Pkcs11KeyStore } from "./hsm/pkcs11-key-store.js";
import { INTERNAL_CALLER } from "./kms/caller.js";
import { type ConnectionState, KeyStoreConnections, type KeyStoreStatus } from "./kms/key-store-connections.js";
import { LifecycleJobs } from "./kms/lifecycle-jobs.js";
import type { Clock, KeyStore } from "./kms/ports.js";
import { readAllRecords, reconcile, reconcileStore } from "./kms/reconcile.js";
import { KmsService } from "./kms/service.js";
import { lifecycleEvents } from "./observability/lifecycle-events.js";
import type { Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { cachingMetadataStore } from "./store/caching-metadata-store.js";
import { SqliteMetadataStore } from "./store/sqlite-metadata-store.js";

export interface RunningDaemon {
  readonly grpcPort: number;
  readonly awsPort: number | undefined;
  readonly metricsPort: number | undefined;
  /** Stops accepting calls, drains in-flight ones (up to the drain timeout), then closes the devices. */
  stop(): Promise<void>;
}

/**
 * FOR TESTS ONLY: P11KMS_TEST_CLOCK_OFFSET_MS shifts the daemon's clock by that many milliseconds, so an
 * end-to-end test can restart the daemon "days later" and watch a deletion deadline pass while it was
 * down. Never set it in production: deletions and rotations would happen at the wrong time.
 */
function systemClockFor(log: Logger): Clock {
  const offset = Number(process.env.P11KMS_TEST_CLOCK_OFFSET_MS ?? 0);
  if (!Number.isFinite(offset) || offset === 0) return { now: () => new Date() };
  log.warn({ offsetMs: offset }, "P11KMS_TEST_CLOCK_OFFSET_MS is set: the clock is shifted (testing only)");
  return { now: () => new Date(Date.now() + offset) };
}

/**
 * Builds the daemon from a validated configuration: store → key stores → reconciliation → service →
 * servers. Nothing is served until reconciliation has finished.
 */
export async function startDaemon(config: Config & { baseDir: string }, log: Logger, prepared?: StorePreparation): Promise<RunningDaemon> {
  for (const [name, value] of Object.entries(config.moduleEnvironment)) process.env[name] = value;
  const keyStores = new Map<string, KeyStore>();
  const sqlite = new SqliteMetadataStore(config.storage.sqlitePath);
  const metadata =
    config.storage.recordCacheMs > 0
      ? cachingMetadataStore(sqlite, {
          maxEntries: 10_000,
          ttlMs: config.storage.recordCacheMs,
          // Any change to a key (disable, deletion, rotation, material removed…) also drops its session copies.
          onWrite: (keyId) => {
            if (keyId === undefined) return;
            for (const ks of keyStores.values()) if (ks instanceof Pkcs11KeyStore) ks.dropCopies(keyId);
          },
        })
      : sqlite;
  const systemClock = systemClockFor(log);
  const metrics = new Metrics();
  let grpc: GrpcServer | undefined;
  const connections = new KeyStoreConnections(
    config.keyStores.map((k) => k.id),
    keyStores,
    {
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
    },
    metadata,
    systemClock,
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
          applyHealth();
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
  /**
   * grpc.health.v1: each store as "p11kms.v1.KeyStore/<id>" (SERVING while CONNECTED); the server ("") and
   * the KMS service are SERVING while at least one store is CONNECTED. Nothing is SERVING before start-up
   * has finished or once shutdown began.
   */
  let healthLive = false;
  function applyHealth(): void {
    if (!grpc || !healthLive) return;
    const all = connections.list();
    for (const s of all) grpc.health.setStatus(`${KEY_STORE_HEALTH_PREFIX}${s.keyStoreId}`, s.connectionState === "CONNECTED" ? "SERVING" : "NOT_SERVING");
    const any = all.some((s) => s.connectionState === "CONNECTED") ? "SERVING" : "NOT_SERVING";
    grpc.health.setStatus("", any);
    grpc.health.setStatus(KMS_SERVICE_NAME, any);
  }
  let jobs: LifecycleJobs | undefined;
  let metricsServer: HttpServer | undefined;
  let awsServer: HttpServer | undefined;
  let awsPort: number | undefined;
  let audit: AuditRuntime | undefined;
  try {
    // Loaded while the start-up worker opens the tokens (the main thread would be idle), like the records.
    const reflection = loadReflection().catch((err: unknown) => {
      log.warn({ err }, "gRPC server reflection unavailable");
      return undefined;
    });
    // Read while the start-up worker opens the tokens (the main thread would be idle); nothing writes yet.
    const records = await readAllRecords(metadata);
    await connections.start();
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

    const administrator = config.authorization.administrator ?? `arn:aws:iam::${config.accountId}:root`;
    log.info({ administrator, accountPrincipals: config.authorization.accountPrincipals }, "authorization: administrator principal");
    const deps = {
      metadata,
      keyStores,
      defaultKeyStoreId: config.defaultKeyStore ?? config.keyStores[0]!.id,
      clock: systemClock,
      partition: { region: config.region, accountId: config.accountId },
      // Lifecycle jobs' actions are audited too; `audit` is set just below, before any job runs.
      events: withInternalAudit(lifecycleEvents(log, metrics), () => audit?.auditor, log),
      connections,
      access: { administrator, accountPrincipals: config.authorization.accountPrincipals },
    };
    // The root service acts as the daemon itself; facades get it as a CallerScopedService and bind each call's caller.
    const service = new KmsService(deps, INTERNAL_CALLER);
    audit = await startAudit({
      config: config.audit,
      partition: deps.partition,
      clock: systemClock,
      signer: auditSignerOf(keyStores, deps.defaultKeyStoreId),
      log,
      metrics,
    });
    // Deadlines that passed while the daemon was down are handled before the first call is served.
    jobs = new LifecycleJobs(deps);
    const due = await jobs.tick();
    log.info({ deleted: due.deleted.length, rotated: due.rotated.length, deferred: due.deferred.length }, "due key lifecycle jobs run");
    jobs.start(config.lifecycle.checkIntervalSeconds * 1000);
    // The facades call the audited service; internal callers (quota lookups, lifecycle jobs) the bare one.
    const served = config.audit.enabled ? auditedService(service) : service;
    const quotas = quotaGateFor(config.quotas, service, metrics, systemClock);
    if (quotas) log.info({ quotas: config.quotas }, "request quotas enabled");
    grpc = await startGrpcServer({
      listen: config.grpc.listen,
      maxMessageBytes: config.grpc.maxMessageBytes,
      service: served,
      tls: config.grpc.tls && {
        cert: readFileSync(config.grpc.tls.certFile),
        key: readFileSync(config.grpc.tls.keyFile),
        clientCa: readFileSync(config.grpc.tls.clientCaFile),
        principalFrom: config.grpc.tls.principalFrom,
      },
      insecurePrincipal: config.grpc.insecurePrincipal ?? administrator,
      accountId: config.accountId,
      log,
      metrics,
      quotas,
      audit,
      reflection,
    });
    if (config.aws.enabled) {
      const keys = loadAccessKeys(config.aws.accessKeyFiles, config.accountId);
      if (keys.size === 0) log.warn("the AWS facade has no access keys configured (aws.accessKeyFiles): every request will be refused");
      const { host, port } = splitHostPort(config.aws.listen);
      const aws = await startAwsServer({
        host,
        port,
        maxBodyBytes: config.aws.maxBodyBytes,
        requestTimeoutMs: config.aws.requestTimeoutMs,
        tls: config.aws.tls,
        verifier: new SigV4Verifier(keys, config.region),
        service: served,
        audit: audit.auditor,
        log,
        metrics,
        quotas,
      });
      awsServer = aws.server;
      awsPort = aws.port;
      log.info({ accessKeys: [...keys.keys()], files: config.aws.accessKeyFiles }, "AWS facade access keys loaded");
    }
    if (config.metrics.enabled) {
      const { host, port } = splitHostPort(config.metrics.listen);
      metricsServer = await metrics.listen(host, port);
    }
    healthLive = true;
    applyHealth();
  } catch (err) {
    await closeAll();
    throw err;
  }

  const grpcRef = grpc;
  const metricsAddr = metricsServer?.address();
  const metricsPort = typeof metricsAddr === "object" && metricsAddr ? metricsAddr.port : undefined;
  if (config.grpc.insecure) {
    log.warn(
      { listen: config.grpc.listen, principal: config.grpc.insecurePrincipal ?? config.authorization.administrator ?? `arn:aws:iam::${config.accountId}:root` },
      "gRPC is PLAINTEXT and UNAUTHENTICATED (grpc.insecure: true): every local caller acts as this principal; allowed on loopback only",
    );
  } else {
    log.info({ listen: config.grpc.listen, principalFrom: config.grpc.tls?.principalFrom }, "gRPC is mTLS: callers are identified by their client certificates");
  }
  if (config.aws.enabled && config.aws.insecure) {
    log.warn({ listen: config.aws.listen }, "the AWS facade is PLAIN HTTP (aws.insecure: true); allowed on loopback only");
  }
  // uptimeMs: from process start, so the log shows the start-up time (docs/benchmarks.md).
  log.info({ grpcPort: grpcRef.port, awsPort, metricsPort, uptimeMs: Math.round(process.uptime() * 1000) }, "p11kms serving");

  async function closeAll(): Promise<void> {
    metricsServer?.close();
    if (awsServer?.listening) awsServer.close();
    await jobs?.stop();
    // After the servers drained: every answered request's event is written, then the shutdown digest.
    await audit?.close().catch((err: unknown) => log.error({ err }, "closing the audit log failed"));
    await connections.closeAll();
    await metadata.close().catch(() => undefined);
    await prepared?.release(); // never C_Finalize while the worker may be inside the module
    const left = closeModules();
    if (left.length > 0) log.warn({ modules: left }, "PKCS#11 calls still running at exit (a device that stopped answering): module not finalised");
  }

  let stopping: Promise<void> | undefined;
  return {
    grpcPort: grpcRef.port,
    awsPort,
    metricsPort,
    stop() {
      stopping ??= (async () => {
        healthLive = false;
        grpcRef.health.setStatus("", "NOT_SERVING");
        grpcRef.health.setStatus(KMS_SERVICE_NAME, "NOT_SERVING");
        for (const s of connections.list()) grpcRef.health.setStatus(`${KEY_STORE_HEALTH_PREFIX}${s.keyStoreId}`, "NOT_SERVING");
        audit?.hub.closeAll(); // watch streams never end on their own
        // Both servers stop accepting at once; in-flight calls finish until the drain timeout.
        const grpcDrained = new Promise<void>((resolve) => grpcRef.server.tryShutdown(() => resolve()));
        const awsDrained = new Promise<void>((resolve) => (awsServer ? awsServer.close(() => resolve()) : resolve()));
        awsServer?.closeIdleConnections();
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            log.warn("drain timeout reached: cancelling in-flight calls");
            grpcRef.server.forceShutdown();
            awsServer?.closeAllConnections();
            resolve();
          }, config.shutdown.drainTimeoutMs);
        });
        await Promise.race([Promise.all([grpcDrained, awsDrained]), timedOut]);
        clearTimeout(timer);
        await closeAll();
        log.info("p11kms stopped");
      })();
      return stopping;
    },
  };
}

/** The audit signing key lives in the default key store's token (looked up per use: the store may reconnect). */
function auditSignerOf(keyStores: ReadonlyMap<string, KeyStore>, id: string): () => AuditSigner | undefined {
  const signers = new WeakMap<Pkcs11KeyStore, AuditSigner>();
  return () => {
    const store = keyStores.get(id);
    if (!(store instanceof Pkcs11KeyStore)) return undefined;
    let signer = signers.get(store);
    if (!signer) signers.set(store, (signer = store.auditSigner()));
    return signer;
  };
}

/** The grpc.health.v1 service name of one key store: this prefix and the store id. */
export const KEY_STORE_HEALTH_PREFIX = "p11kms.v1.KeyStore/";

const STATES: readonly ConnectionState[] = ["CONNECTED", "CONNECTING", "DISCONNECTED", "DISCONNECTING", "FAILED"];

function stateMetric(metrics: Metrics, status: KeyStoreStatus): void {
  for (const state of STATES) metrics.keyStoreState.set({ key_store: status.keyStoreId, state }, state === status.connectionState ? 1 : 0);
}

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  return { host: s.slice(0, i).replace(/^\[(.*)\]$/, "$1"), port: Number(s.slice(i + 1)) };
}
