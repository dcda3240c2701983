import { Metadata, type sendUnaryData, type ServerUnaryCall, type ServiceError } from "@grpc/grpc-js";
import type { KeyManagementServiceServer } from "../../gen/p11kms/v1/kms.js";
import { toKmsError } from "../../kms/errors.js";
import { type Auditor, type AuditedRequest, NO_AUDIT } from "../../audit/auditor.js";
import type { CallerScopedService, KmsService } from "../../kms/service.js";
import type { Logger } from "../../observability/logger.js";
import type { Metrics } from "../../observability/metrics.js";
import { GRPC_ERROR_TYPE_KEY } from "@p11kms/client/contract";
import { ERROR_TABLE } from "../error-table.js";
import { type QuotaGate, quotaKeyId } from "../quota-gate.js";
import { authzHandlers } from "./authz-handlers.js";
import { unidentifiedCaller } from "./caller.js";
import { context, keyMetadataToProto } from "./codec.js";
import { type GrpcIdentityConfig, grpcCaller } from "./identity.js";
import { importHandlers } from "./import-handlers.js";
import { lifecycleHandlers } from "./lifecycle-handlers.js";

type Handler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

/**
 * The gRPC KeyManagementService: identify the caller (client certificate, or the configured principal of
 * loopback plaintext), admit (request quotas per principal), call the service bound to that caller, encode,
 * audit.
 */
export function kmsHandlers(
  service: CallerScopedService,
  identity: GrpcIdentityConfig,
  log: Logger,
  metrics: Metrics,
  quotas?: QuotaGate,
  audit: Auditor = NO_AUDIT,
): Omit<KeyManagementServiceServer, "watchAuditEvents"> {
  function unary<Req, Res>(operation: string, fn: (req: Req, service: KmsService) => Promise<Res>): Handler<Req, Res> {
    // Label sets bound once per operation: prom-client hashes labels on every un-bound call.
    const latency = metrics.latency.labels({ api: "grpc", operation });
    const ok = metrics.requests.labels({ api: "grpc", operation, outcome: "OK" });
    return (call, callback) => {
      const started = performance.now();
      // One audit event per call, refusals included: identification can fail (AccessDeniedException), and the
      // event then names the unidentified caller. With sync durability the answer waits for the event.
      const audited: AuditedRequest = { api: "grpc", caller: unidentifiedCaller(call, identity.mode), operation };
      audit
        .around(audited, async (scope) => {
          const caller = (audited.caller = grpcCaller(call, audited.caller, identity));
          if (quotas) await quotas.admit("grpc", caller.principal, operation, quotaKeyId(call.request));
          return fn(call.request, service.as(caller, scope));
        })
        .then(
          (res) => {
            latency.observe((performance.now() - started) / 1000);
            ok.inc();
            callback(null, res);
          },
          (err: unknown) => {
            latency.observe((performance.now() - started) / 1000);
            const kmsErr = toKmsError(err);
            metrics.requests.inc({ api: "grpc", operation, outcome: kmsErr.code });
            const row = ERROR_TABLE[kmsErr.code];
            if (row.http >= 500) log.error({ err: kmsErr, operation }, "request failed");
            else log.debug({ code: kmsErr.code, operation }, "request rejected");
            const metadata = new Metadata();
            metadata.set(GRPC_ERROR_TYPE_KEY, kmsErr.code);
            const error: Partial<ServiceError> = { code: row.grpc, details: kmsErr.message, metadata };
            callback(error);
          },
        );
    };
  }

  return {
    createKey: unary("CreateKey", async (r, service) => ({ keyMetadata: keyMetadataToProto(await service.createKey(r)) })),
    describeKey: unary("DescribeKey", async (r, service) => ({ keyMetadata: keyMetadataToProto(await service.describeKey(r)) })),
    listKeys: unary("ListKeys", async (r, service) => {
      const res = await service.listKeys(r);
      return { keys: res.keys, truncated: res.truncated, nextMarker: res.nextMarker ?? "" };
    }),
    encrypt: unary("Encrypt", (r, service) => service.encrypt({ ...r, encryptionContext: context(r.encryptionContext) })),
    decrypt: unary("Decrypt", (r, service) => service.decrypt({ ...r, encryptionContext: context(r.encryptionContext) })),
    reEncrypt: unary("ReEncrypt", (r, service) =>
      service.reEncrypt({
        ...r,
        sourceEncryptionContext: context(r.sourceEncryptionContext),
        destinationEncryptionContext: context(r.destinationEncryptionContext),
      }),
    ),
    generateDataKey: unary("GenerateDataKey", (r, service) =>
      service.generateDataKey({ ...r, encryptionContext: context(r.encryptionContext) }),
    ),
    generateDataKeyWithoutPlaintext: unary("GenerateDataKeyWithoutPlaintext", (r, service) =>
      service.generateDataKeyWithoutPlaintext({ ...r, encryptionContext: context(r.encryptionContext) }),
    ),
    generateRandom: unary("GenerateRandom", (r, service) => service.generateRandom(r)),
    getPublicKey: unary("GetPublicKey", async (r, service) => {
      const res = await service.getPublicKey(r);
      return { ...res, customerMasterKeySpec: res.keySpec };
    }),
    sign: unary("Sign", (r, service) => service.sign(r)),
    verify: unary("Verify", (r, service) => service.verify(r)),
    generateMac: unary("GenerateMac", (r, service) => service.generateMac(r)),
    verifyMac: unary("VerifyMac", (r, service) => service.verifyMac(r)),
    generateDataKeyPair: unary("GenerateDataKeyPair", (r, service) =>
      service.generateDataKeyPair({ ...r, encryptionContext: context(r.encryptionContext) }),
    ),
    generateDataKeyPairWithoutPlaintext: unary("GenerateDataKeyPairWithoutPlaintext", (r, service) =>
      service.generateDataKeyPairWithoutPlaintext({ ...r, encryptionContext: context(r.encryptionContext) }),
    ),
    ...lifecycleHandlers(unary),
    ...importHandlers(unary),
    ...authzHandlers(unary),
  };
}
