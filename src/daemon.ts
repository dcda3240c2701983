import type { Server as HttpServer } from "node:http";
import { loadAccessKeys } from "./api/aws/access-keys.js";
import { startAwsServer } from "./api/aws/server.js";
import { SigV4Verifier } from "./api/aws/sigv4.js";
import { type GrpcServer, KMS_SERVICE_NAME, startGrpcServer } from "./api/grpc/server.js";
import { quotaGateFor } from "./api/quota-gate.js";
import type { Config } from "./config/schema.js";
import { parsePkcs11Uri } from "./config/pkcs11-uri.js";
import { closeModules } from "./hsm/module.js";
import { readPin } from "./hsm/pin.js";
import { Pkcs11KeyStore } from "./hsm/pkcs11-key-store.js";
import type { Clock, KeyStore } from "./kms/ports.js";
import { reconcile } from "./kms/reconcile.js";
import { KmsService } from "./kms/service.js";
import type { Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { SqliteMetadataStore } from "./store/sqlite-metadata-store.js";

export interface RunningDaemon {
  readonly grpcPort: number;
  readonly awsPort: number | undefined;
  readonly metricsPort: number | undefined;
  /** Stops accepting calls, drains in-flight ones (up to the drain timeout), then closes the devices. */
  stop(): Promise<void>;
}

const systemClock: Clock = { now: () => new Date() };

/**
 * Builds the daemon from a validated configuration: store → key stores → reconciliation → service →
 * servers. Nothing is served until reconciliation has finished.
 */
export async function startDaemon(config: Config & { baseDir: string }, log: Logger): Promise<RunningDaemon> {
  for (const [name, value] of Object.entries(config.moduleEnvironment)) process.env[name] = value;
  const metadata = new SqliteMetadataStore(config.storage.sqlitePath);
  const keyStores = new Map<string, KeyStore>();
  let grpc: GrpcServer | undefined;
  let metricsServer: HttpServer | undefined;
  let awsServer: HttpServer | undefined;
  let awsPort: number | undefined;
  try {
    for (const ks of config.keyStores) {
      const uri = parsePkcs11Uri(ks.uri);
      const store = Pkcs11KeyStore.open(ks.id, {
        modulePath: uri.modulePath,
        tokenLabel: uri.token,
        pin: readPin(uri.pinSource, config.baseDir),
        maxSessions: ks.maxSessions,
        rsaOaepSha256Fallback: ks.rsaOaepSha256Fallback,
      });
      keyStores.set(ks.id, store);
      log.info(
        {
          keyStoreId: ks.id,
          token: uri.token,
          module: uri.modulePath,
          keySpecs: store.capabilities.keySpecs,
          rsaOaepSha256: store.capabilities.rsaOaepSha256,
        },
        "key store opened",
      );
    }
    const report = await reconcile(metadata, keyStores, log);
    log.info(
      {
        abortedCreations: report.abortedCreations.length,
        quarantined: report.quarantined.length,
        missingMaterial: report.missingMaterial.length,
      },
      "reconciliation finished",
    );

    const service = new KmsService({
      metadata,
      keyStores,
      defaultKeyStoreId: config.defaultKeyStore ?? config.keyStores[0]!.id,
      clock: systemClock,
      partition: { region: config.region, accountId: config.accountId },
    });
    const metrics = new Metrics();
    const quotas = quotaGateFor(config.quotas, service, metrics, systemClock);
    if (quotas) log.info({ quotas: config.quotas }, "request quotas enabled");
    grpc = await startGrpcServer({
      listen: config.grpc.listen,
      maxMessageBytes: config.grpc.maxMessageBytes,
      service,
      log,
      metrics,
      quotas,
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
        service,
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
    grpc.health.setStatus("", "SERVING");
    grpc.health.setStatus(KMS_SERVICE_NAME, "SERVING");
  } catch (err) {
    await closeAll();
    throw err;
  }

  const grpcRef = grpc;
  const metricsAddr = metricsServer?.address();
  const metricsPort = typeof metricsAddr === "object" && metricsAddr ? metricsAddr.port : undefined;
  if (config.grpc.insecure) {
    log.warn({ listen: config.grpc.listen }, "gRPC is PLAINTEXT (grpc.insecure: true); allowed on loopback only");
  }
  if (config.aws.enabled && config.aws.insecure) {
    log.warn({ listen: config.aws.listen }, "the AWS facade is PLAIN HTTP (aws.insecure: true); allowed on loopback only");
  }
  log.info({ grpcPort: grpcRef.port, awsPort, metricsPort }, "p11kms serving");

  async function closeAll(): Promise<void> {
    metricsServer?.close();
    if (awsServer?.listening) awsServer.close();
    for (const s of keyStores.values()) await s.close().catch(() => undefined);
    await metadata.close().catch(() => undefined);
    closeModules();
  }

  let stopping: Promise<void> | undefined;
  return {
    grpcPort: grpcRef.port,
    awsPort,
    metricsPort,
    stop() {
      stopping ??= (async () => {
        grpcRef.health.setStatus("", "NOT_SERVING");
        grpcRef.health.setStatus(KMS_SERVICE_NAME, "NOT_SERVING");
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

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  return { host: s.slice(0, i).replace(/^\[(.*)\]$/, "$1"), port: Number(s.slice(i + 1)) };
}
