import { Metadata, type sendUnaryData, type ServerUnaryCall, type ServiceError } from "@grpc/grpc-js";
import type { KeyManagementServiceServer } from "../../gen/p11kms/v1/kms.js";
import { toKmsError } from "../../kms/errors.js";
import { type Auditor, NO_AUDIT } from "../../audit/auditor.js";
import type { KmsService } from "../../kms/service.js";
import type { Logger } from "../../observability/logger.js";
import type { Metrics } from "../../observability/metrics.js";
import { ERROR_TABLE, GRPC_ERROR_TYPE_KEY } from "../error-table.js";
import { ANONYMOUS_PRINCIPAL, type QuotaGate, quotaKeyId } from "../quota-gate.js";
import { grpcCaller } from "./caller.js";
import { context, keyMetadataToProto } from "./codec.js";
import { importHandlers } from "./import-handlers.js";
import { lifecycleHandlers } from "./lifecycle-handlers.js";

type Handler<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void;

/**
 * The gRPC KeyManagementService: decode, admit (request quotas), call the service, encode, audit. Until mTLS
 * identifies callers, every gRPC caller is the principal "anonymous" and shares one set of quotas.
 */
export function kmsHandlers(
  service: KmsService,
  log: Logger,
  metrics: Metrics,
  quotas?: QuotaGate,
  audit: Auditor = NO_AUDIT,
): Omit<KeyManagementServiceServer, "watchAuditEvents"> {
  function unary<Req, Res>(operation: string, fn: (req: Req) => Promise<Res>): Handler<Req, Res> {
    const admitted = async (req: Req): Promise<Res> => {
      await quotas?.admit("grpc", ANONYMOUS_PRINCIPAL, operation, quotaKeyId(req));
      return fn(req);
    };
    return (call, callback) => {
      const end = metrics.latency.startTimer({ api: "grpc", operation });
      // One audit event per call, refusals included; with sync durability the answer waits for it.
      audit.around({ api: "grpc", caller: grpcCaller(call), operation }, () => admitted(call.request)).then(
        (res) => {
          end();
          metrics.requests.inc({ api: "grpc", operation, outcome: "OK" });
          callback(null, res);
        },
        (err: unknown) => {
          end();
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
    createKey: unary("CreateKey", async (r) => ({ keyMetadata: keyMetadataToProto(await service.createKey(r)) })),
    describeKey: unary("DescribeKey", async (r) => ({ keyMetadata: keyMetadataToProto(await service.describeKey(r)) })),
    listKeys: unary("ListKeys", async (r) => {
      const res = await service.listKeys(r);
      return { keys: res.keys, truncated: res.truncated, nextMarker: res.nextMarker ?? "" };
    }),
    encrypt: unary("Encrypt", (r) => service.encrypt({ ...r, encryptionContext: context(r.encryptionContext) })),
    decrypt: unary("Decrypt", (r) => service.decrypt({ ...r, encryptionContext: context(r.encryptionContext) })),
    reEncrypt: unary("ReEncrypt", (r) =>
      service.reEncrypt({
        ...r,
        sourceEncryptionContext: context(r.sourceEncryptionContext),
        destinationEncryptionContext: context(r.destinationEncryptionContext),
      }),
    ),
    generateDataKey: unary("GenerateDataKey", (r) =>
      service.generateDataKey({ ...r, encryptionContext: context(r.encryptionContext) }),
    ),
    generateDataKeyWithoutPlaintext: unary("GenerateDataKeyWithoutPlaintext", (r) =>
      service.generateDataKeyWithoutPlaintext({ ...r, encryptionContext: context(r.encryptionContext) }),
    ),
    generateRandom: unary("GenerateRandom", (r) => service.generateRandom(r)),
    getPublicKey: unary("GetPublicKey", async (r) => {
      const res = await service.getPublicKey(r);
      return { ...res, customerMasterKeySpec: res.keySpec };
    }),
    sign: unary("Sign", (r) => service.sign(r)),
    verify: unary("Verify", (r) => service.verify(r)),
    generateMac: unary("GenerateMac", (r) => service.generateMac(r)),
    verifyMac: unary("VerifyMac", (r) => service.verifyMac(r)),
    generateDataKeyPair: unary("GenerateDataKeyPair", (r) =>
      service.generateDataKeyPair({ ...r, encryptionContext: context(r.encryptionContext) }),
    ),
    generateDataKeyPairWithoutPlaintext: unary("GenerateDataKeyPairWithoutPlaintext", (r) =>
      service.generateDataKeyPairWithoutPlaintext({ ...r, encryptionContext: context(r.encryptionContext) }),
    ),
    ...lifecycleHandlers(service, unary),
    ...importHandlers(service, unary),
  };
}
