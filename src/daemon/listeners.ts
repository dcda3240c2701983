import { readFileSync } from "node:fs";
import { loadAccessKeys } from "../api/aws/access-keys.js";
import { startAwsServer } from "../api/aws/server.js";
import { SigV4Verifier } from "../api/aws/sigv4.js";
import { type GrpcServer, loadReflection, type Reflection, startGrpcServer } from "../api/grpc/server.js";
import { type QuotaGate, quotaGateFor } from "../api/quota-gate.js";
import { auditedService } from "../audit/auditor.js";
import type { CallerScopedService } from "../kms/service.js";
import type { Logger } from "../observability/logger.js";
import type { DaemonContext } from "./context.js";
import type { BuiltService } from "./service.js";
import type { Opened } from "./shutdown.js";

/** The servers listening, and their ports (awsPort, metricsPort: undefined when disabled). */
export interface Listening {
  readonly grpc: GrpcServer;
  readonly awsPort: number | undefined;
  readonly metricsPort: number | undefined;
  /** Re-reads aws.accessKeyFiles (SIGHUP); a no-op without the AWS facade. */
  readonly reloadAccessKeys: () => void;
}

/** What both facades call, and the request quotas they apply (undefined: disabled). */
interface Facade {
  readonly served: CallerScopedService;
  readonly quotas: QuotaGate | undefined;
}

/** Server reflection, loading in the background; resolves to undefined (with a warning) if it cannot load. */
export function loadReflectionInBackground(log: Logger): Promise<Reflection | undefined> {
  return loadReflection().catch((err: unknown) => {
    log.warn({ err }, "gRPC server reflection unavailable");
    return undefined;
  });
}

/**
 * Start-up stage 3: the gRPC server, then the AWS facade and the metrics endpoint when enabled. Each server
 * is recorded in `opened` as soon as it listens. Health stays NOT_SERVING until the daemon says it serves.
 */
export async function startListeners(ctx: DaemonContext, built: BuiltService, reflection: Promise<Reflection | undefined>, opened: Opened): Promise<Listening> {
  const { config, log, metrics, clock } = ctx;
  // The facades call the audited service; internal callers (quota lookups, lifecycle jobs) the bare one.
  const served = config.audit.enabled ? auditedService(built.service) : built.service;
  const quotas = quotaGateFor(config.quotas, built.service, metrics, clock);
  if (quotas) log.info({ quotas: config.quotas }, "request quotas enabled");
  const facade: Facade = { served, quotas };
  const grpc = (opened.grpc = await startGrpc(ctx, built, facade, reflection));
  const aws = config.aws.enabled ? await startAwsFacade(ctx, built, facade, opened) : undefined;
  if (config.metrics.enabled) {
    const { host, port } = splitHostPort(config.metrics.listen);
    opened.metricsServer = await metrics.listen(host, port);
  }
  const metricsAddr = opened.metricsServer?.address();
  const metricsPort = typeof metricsAddr === "object" && metricsAddr ? metricsAddr.port : undefined;
  return { grpc, awsPort: aws?.port, metricsPort, reloadAccessKeys: aws?.reloadAccessKeys ?? (() => undefined) };
}

function startGrpc({ config, log, metrics }: DaemonContext, built: BuiltService, facade: Facade, reflection: Promise<Reflection | undefined>): Promise<GrpcServer> {
  return startGrpcServer({
    listen: config.grpc.listen,
    maxMessageBytes: config.grpc.maxMessageBytes,
    service: facade.served,
    tls: config.grpc.tls && {
      cert: readFileSync(config.grpc.tls.certFile),
      key: readFileSync(config.grpc.tls.keyFile),
      clientCa: readFileSync(config.grpc.tls.clientCaFile),
      principalFrom: config.grpc.tls.principalFrom,
    },
    insecurePrincipal: config.grpc.insecurePrincipal ?? built.administrator,
    accountId: config.accountId,
    log,
    metrics,
    quotas: facade.quotas,
    audit: built.audit,
    reflection,
  });
}

/** The AWS-KMS-compatible facade; returns its port and how to reload its access keys. */
async function startAwsFacade(
  { config, log, metrics }: DaemonContext,
  built: BuiltService,
  facade: Facade,
  opened: Opened,
): Promise<{ port: number; reloadAccessKeys: () => void }> {
  const keys = loadAccessKeys(config.aws.accessKeyFiles, config.accountId);
  const verifier = new SigV4Verifier(keys, config.region);
  if (keys.size === 0) log.warn("the AWS facade has no access keys configured (aws.accessKeyFiles): every request will be refused");
  const { host, port } = splitHostPort(config.aws.listen);
  const aws = await startAwsServer({
    host,
    port,
    maxBodyBytes: config.aws.maxBodyBytes,
    requestTimeoutMs: config.aws.requestTimeoutMs,
    tls: config.aws.tls,
    verifier,
    service: facade.served,
    audit: built.audit.auditor,
    log,
    metrics,
    quotas: facade.quotas,
  });
  opened.awsServer = aws.server;
  log.info({ accessKeys: [...keys.keys()], files: config.aws.accessKeyFiles }, "AWS facade access keys loaded");
  const reloadAccessKeys = () => {
    // All or nothing: a file that is missing, unreadable or invalid keeps the current keys (and says why).
    try {
      const fresh = loadAccessKeys(config.aws.accessKeyFiles, config.accountId);
      verifier.replaceKeys(fresh);
      log.info({ accessKeys: [...fresh.keys()], files: config.aws.accessKeyFiles }, "AWS facade access keys reloaded");
    } catch (err) {
      log.error({ reason: err instanceof Error ? err.message : String(err) }, "AWS facade access keys not reloaded: the current keys stay in use");
    }
  };
  return { port: aws.port, reloadAccessKeys };
}

/** Says how callers are authenticated on each listener (a warning for plaintext ones). */
export function logTransportSecurity({ config, log }: DaemonContext): void {
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
}

function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  return { host: s.slice(0, i).replace(/^\[(.*)\]$/, "$1"), port: Number(s.slice(i + 1)) };
}
