import { status } from "@grpc/grpc-js";
import type { KmsErrorCode } from "../kms/errors.js";

/**
 * How every domain error code travels on each wire — the one place this is decided. The compiler checks
 * that each code has a row. `http` is the status the AWS JSON facade answers with (AWS uses 400 for every
 * client error, 5xx only for its own faults).
 */
export const ERROR_TABLE = {
  AccessDeniedException: { grpc: status.PERMISSION_DENIED, http: 400 },
  AlreadyExistsException: { grpc: status.ALREADY_EXISTS, http: 400 },
  CustomKeyStoreInvalidStateException: { grpc: status.FAILED_PRECONDITION, http: 400 },
  CustomKeyStoreNotFoundException: { grpc: status.NOT_FOUND, http: 400 },
  DependencyTimeoutException: { grpc: status.UNAVAILABLE, http: 503 },
  DisabledException: { grpc: status.FAILED_PRECONDITION, http: 400 },
  DryRunOperationException: { grpc: status.ABORTED, http: 412 },
  ExpiredImportTokenException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  IncorrectKeyException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  IncorrectKeyMaterialException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  InvalidAliasNameException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  InvalidArnException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  InvalidCiphertextException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  InvalidGrantIdException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  InvalidGrantTokenException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  InvalidImportTokenException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  InvalidKeyUsageException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  InvalidMarkerException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  KeyUnavailableException: { grpc: status.UNAVAILABLE, http: 500 },
  KMSInternalException: { grpc: status.INTERNAL, http: 500 },
  KMSInvalidMacException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  KMSInvalidSignatureException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  KMSInvalidStateException: { grpc: status.FAILED_PRECONDITION, http: 400 },
  LimitExceededException: { grpc: status.RESOURCE_EXHAUSTED, http: 400 },
  MalformedPolicyDocumentException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  NotFoundException: { grpc: status.NOT_FOUND, http: 400 },
  TagException: { grpc: status.INVALID_ARGUMENT, http: 400 },
  ThrottlingException: { grpc: status.RESOURCE_EXHAUSTED, http: 400 },
  UnsupportedOperationException: { grpc: status.UNIMPLEMENTED, http: 400 },
  ValidationException: { grpc: status.INVALID_ARGUMENT, http: 400 },
} as const satisfies Record<KmsErrorCode, { grpc: status; http: number }>;
