import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { HealthImplementation, protoPath as healthProtoPath } from "grpc-health-check";
import { KeyManagementServiceService } from "../../gen/p11kms/v1/kms.js";
import type { CallerScopedService } from "../../kms/service.js";
import type { Logger } from "../../observability/logger.js";
import type { Metrics } from "../../observability/metrics.js";
import type { AuditRuntime } from "../../audit/setup.js";
import type { QuotaGate } from "../quota-gate.js";
import type { GrpcIdentityConfig } from "./identity.js";
import { kmsHandlers } from "./kms-handlers.js";
import { watchAuditEventsHandler } from "./watch-handler.js";
import { NO_AUDIT } from "../../audit/auditor.js";
import { AuditHub } from "../../audit/hub.js";

export const KMS_SERVICE_NAME = "p11kms.v1.KeyManagementService";
const PROTO_ROOT = fileURLToPath(new URL("../../../proto", import.meta.url));

export interface GrpcServer {
  readonly server: Server;
  readonly port: number;
  readonly health: HealthImplementation;
}

/** Server reflection, ready to add to a server (so grpcurl needs no proto files). */
export interface Reflection {
  addToServer(server: Server): void;
}

/** The gRPC server: KMS service, grpc.health.v1, and server reflection when `reflection` resolves to one. */
export async function startGrpcServer(opts: {
  listen: string;
  maxMessageBytes: number;
  service: CallerScopedService;
  /** mTLS material (PEM files' contents); absent: plaintext, callers are `insecurePrincipal`. */
  tls?: { cert: Buffer; key: Buffer; clientCa: Buffer; principalFrom: "uri-san" | "subject-cn" } | undefined;
  insecurePrincipal: string;
  accountId: string;
  log: Logger;
  metrics: Metrics;
  quotas?: QuotaGate | undefined;
  /** The audit pipeline; without it calls are not audited and WatchAuditEvents streams nothing. */
  audit?: AuditRuntime | undefined;
  /** From {@link loadReflection}, started early; undefined: served without reflection. */
  reflection?: Promise<Reflection | undefined> | undefined;
}): Promise<GrpcServer> {
  const server = new Server({
    "grpc.max_receive_message_length": opts.maxMessageBytes,
    "grpc.max_send_message_length": opts.maxMessageBytes,
    // Channelz call and socket tracking feeds only the channelz service, which p11kms does not serve; its
    // per-call bookkeeping showed in every event-loop profile. Metrics and logs cover what operators need.
    "grpc.enable_channelz": 0,
  });
  const identity: GrpcIdentityConfig = opts.tls
    ? { mode: "mtls", principalFrom: opts.tls.principalFrom, accountId: opts.accountId }
    : { mode: "insecure", principal: opts.insecurePrincipal };
  const auditor = opts.audit?.auditor ?? NO_AUDIT;
  server.addService(KeyManagementServiceService, {
    ...kmsHandlers(opts.service, identity, opts.log, opts.metrics, opts.quotas, auditor),
    watchAuditEvents: watchAuditEventsHandler(opts.audit?.hub ?? new AuditHub(1, () => undefined), auditor, opts.service, identity),
  });

  const health = new HealthImplementation({ "": "NOT_SERVING", [KMS_SERVICE_NAME]: "NOT_SERVING" });
  health.addToServer(server);
  (await opts.reflection)?.addToServer(server);

  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.listen, credentialsFor(opts.tls), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return { server, port, health };
}

/**
 * Loads server reflection, which describes every service this server exposes (health included) so grpcurl
 * can call both. Loading @grpc/reflection and parsing the protos takes ~0.2–0.3 s of the event loop, so the
 * daemon starts it while the key stores open (the main thread mostly waits for the token scan then) and the
 * server is started with it: added after the server was serving, it held up the first calls by as much
 * (docs/benchmarks.md).
 */
export async function loadReflection(): Promise<Reflection> {
  const [{ loadSync }, { ReflectionService }] = await Promise.all([import("@grpc/proto-loader"), import("@grpc/reflection")]);
  return new ReflectionService(loadSync([join(PROTO_ROOT, "p11kms/v1/kms.proto"), healthProtoPath], { includeDirs: [PROTO_ROOT] }));
}

/**
 * mTLS: the client must present a certificate that chains to clientCa (checkClientCertificate = true), so a
 * call without one, with an expired one or from another CA never reaches a handler: the handshake fails.
 */
function credentialsFor(tls: { cert: Buffer; key: Buffer; clientCa: Buffer } | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(tls.clientCa, [{ cert_chain: tls.cert, private_key: tls.key }], true);
}
