import { type ServiceError, status } from "@grpc/grpc-js";
import { GRPC_ERROR_TYPE_KEY } from "../contract.js";

/**
 * Every failure of a {@link P11KmsClient} call. `type` is the AWS exception name the service sent
 * (`NotFoundException`, `ThrottlingException`, ...) — the same name the AWS SDKs use — or, when the call
 * never got an answer from the service, one of the AWS SDK's client-side names: `NetworkingError`
 * (unreachable), `TimeoutError` (deadline exceeded), `RequestAbortedError`, `UnknownError`.
 */
export class KmsClientError extends Error {
  override readonly name = "KmsClientError";

  constructor(
    /** The AWS exception name, e.g. `ThrottlingException`. */
    readonly type: string,
    message: string,
    /** The gRPC status code of the last attempt. */
    readonly grpcCode: number,
    /** The AWS operation name, e.g. `Decrypt`. */
    readonly operation: string,
    /** How many attempts were made (retries included). */
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Whether a later identical call may succeed: throttling, or the service/token momentarily unreachable. */
  get retryable(): boolean {
    return this.type === "ThrottlingException" || this.grpcCode === status.UNAVAILABLE;
  }
}

/** Builds the typed error from a gRPC failure. */
export function fromServiceError(err: ServiceError, operation: string, attempts: number): KmsClientError {
  const sent = err.metadata?.get(GRPC_ERROR_TYPE_KEY)[0];
  const type = typeof sent === "string" && sent !== "" ? sent : clientSideType(err.code);
  const message = err.details || err.message;
  return new KmsClientError(type, `${operation}: ${type}: ${message}`, err.code, operation, attempts, { cause: err });
}

function clientSideType(code: number): string {
  switch (code) {
    case status.UNAVAILABLE:
      return "NetworkingError";
    case status.DEADLINE_EXCEEDED:
      return "TimeoutError";
    case status.CANCELLED:
      return "RequestAbortedError";
    default:
      return "UnknownError";
  }
}
