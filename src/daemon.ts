import type { Config } from "./config/schema.js";
import { type DaemonContext, systemClockFor } from "./daemon/context.js";
import { ServingHealth } from "./daemon/health.js";
import { type Listening, loadReflectionInBackground, logTransportSecurity, startListeners } from "./daemon/listeners.js";
import { buildService } from "./daemon/service.js";
import { closeAll, type Opened, stopOnce } from "./daemon/shutdown.js";
import { openMetadata, openStores, type StorePreparation, wireKeyStores } from "./daemon/stores.js";
import type { Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";

export { KEY_STORE_HEALTH_PREFIX } from "./daemon/health.js";

export interface RunningDaemon {
  readonly grpcPort: number;
  readonly awsPort: number | undefined;
  readonly metricsPort: number | undefined;
  /** Stops accepting calls, drains in-flight ones (up to the drain timeout), then closes the devices. */
  stop(): Promise<void>;
  /** Re-reads what can change without a restart: the AWS facade's access key files (SIGHUP). */
  reload(): void;
}

/**
 * Builds the daemon from a validated configuration, in stages (src/daemon/): open the stores (key stores,
 * reconciliation) → build the service (audit log, due lifecycle jobs) → start the listeners → serve; stop()
 * drains and closes. Nothing is served until reconciliation and the due jobs have run. A start-up failure
 * closes everything opened so far and rejects.
 */
export async function startDaemon(config: Config & { baseDir: string }, log: Logger, prepared?: StorePreparation): Promise<RunningDaemon> {
  for (const [name, value] of Object.entries(config.moduleEnvironment)) process.env[name] = value;
  const storage = openMetadata(config.storage);
  const ctx: DaemonContext = { config, log, clock: systemClockFor(log), metrics: new Metrics() };
  const health = new ServingHealth();
  const stores = wireKeyStores(ctx, storage, prepared, health);
  // WARNING: each stage records in `opened` what it opened, as soon as it is open: on a start-up failure the
  // catch below closes exactly what was opened so far, then rethrows.
  const opened: Opened = { stores };
  let listening: Listening;
  try {
    // WARNING: reflection loads, and openStores reads every record, while the start-up worker opens the
    // tokens (the main thread would be idle): start it before openStores, consume it in startListeners.
    const reflection = loadReflectionInBackground(log);
    await openStores(stores, ctx);
    // WARNING: in this order. Nothing may be served (startListeners) before reconciliation (openStores)
    // and the due lifecycle jobs (buildService) have run.
    const built = await buildService(ctx, stores, opened);
    listening = await startListeners(ctx, built, reflection, opened);
    health.serve(listening.grpc, stores.connections); // stage 4: SERVING from now on
  } catch (err) {
    await closeAll(opened, ctx);
    throw err;
  }
  logTransportSecurity(ctx);
  const { grpc, awsPort, metricsPort } = listening;
  // uptimeMs: from process start, so the log shows the start-up time (docs/benchmarks.md).
  log.info({ grpcPort: grpc.port, awsPort, metricsPort, uptimeMs: Math.round(process.uptime() * 1000) }, "p11kms serving");
  const stop = stopOnce(ctx, opened, grpc, health);
  return {
    grpcPort: grpc.port,
    awsPort,
    metricsPort,
    stop() {
      return stop();
    },
    reload() {
      listening.reloadAccessKeys();
    },
  };
}
