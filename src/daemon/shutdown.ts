import type { Server as HttpServer } from "node:http";
import type { GrpcServer } from "../api/grpc/server.js";
import type { AuditRuntime } from "../audit/setup.js";
import type { LifecycleJobs } from "../kms/lifecycle-jobs.js";
import type { DaemonContext } from "./context.js";
import type { ServingHealth } from "./health.js";
import { closeStores, type DaemonStores } from "./stores.js";

/**
 * What start-up has opened so far, each part recorded by its stage as soon as it is open: a start-up failure
 * closes exactly these ({@link closeAll}), and stop() drains the servers among them.
 */
export interface Opened {
  readonly stores: DaemonStores;
  audit?: AuditRuntime;
  jobs?: LifecycleJobs;
  /** Shut down by stop() only (a start-up failure leaves it to the process exit). */
  grpc?: GrpcServer;
  awsServer?: HttpServer;
  metricsServer?: HttpServer;
}

/** Closes everything `opened` holds, servers first and the PKCS#11 modules last. */
export async function closeAll(opened: Opened, { log }: Pick<DaemonContext, "log">): Promise<void> {
  // WARNING: in this order. The metrics and AWS servers stop listening; the jobs stop (a tick in progress
  // ends, and its audit events are queued); the audit log closes; only then the key stores (the shutdown
  // digest is signed with a key in the default key store's token), the metadata database and the modules.
  opened.metricsServer?.close();
  if (opened.awsServer?.listening) opened.awsServer.close();
  await opened.jobs?.stop();
  // After the servers drained: every answered request's event is written, then the shutdown digest.
  await opened.audit?.close().catch((err: unknown) => log.error({ err }, "closing the audit log failed"));
  await closeStores(opened.stores, { log });
}

/**
 * Stage 5, stop(): health NOT_SERVING, both servers stop accepting and drain (in-flight calls cancelled at
 * the drain timeout), then everything closes. Later calls return the same promise.
 */
export function stopOnce(ctx: DaemonContext, opened: Opened, grpc: GrpcServer, health: ServingHealth): () => Promise<void> {
  let stopping: Promise<void> | undefined;
  return () => {
    stopping ??= (async () => {
      // WARNING: NOT_SERVING before the drain starts: load balancers and clients stop sending new calls.
      health.stopServing(grpc, opened.stores.connections);
      opened.audit?.hub.closeAll(); // watch streams never end on their own
      await drain(ctx, grpc, opened.awsServer);
      // WARNING: only once the servers drained (or the drain timed out): nothing is still answering.
      await closeAll(opened, ctx);
      ctx.log.info("p11kms stopped");
    })();
    return stopping;
  };
}

/** Both servers stop accepting at once; in-flight calls finish until the drain timeout, then are cancelled. */
async function drain({ config, log }: DaemonContext, grpc: GrpcServer, awsServer: HttpServer | undefined): Promise<void> {
  const grpcDrained = new Promise<void>((resolve) => grpc.server.tryShutdown(() => resolve()));
  const awsDrained = new Promise<void>((resolve) => (awsServer ? awsServer.close(() => resolve()) : resolve()));
  awsServer?.closeIdleConnections();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      // WARNING: the drain timeout force-shuts both servers: without it a stuck call would hold shutdown forever.
      log.warn("drain timeout reached: cancelling in-flight calls");
      grpc.server.forceShutdown();
      awsServer?.closeAllConnections();
      resolve();
    }, config.shutdown.drainTimeoutMs);
  });
  await Promise.race([Promise.all([grpcDrained, awsDrained]), timedOut]);
  clearTimeout(timer);
}
