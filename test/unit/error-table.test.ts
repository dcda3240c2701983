import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { GRPC_ERROR_TYPE_KEY } from "../../packages/client/src/contract.js";
import { ERROR_TABLE } from "../../src/api/error-table.js";
import { KMS_ERROR_CODES, type KmsErrorCode } from "../../src/kms/errors.js";

/** Codes AWS answers with something other than HTTP 400, and what it answers. */
const NOT_400: Partial<Record<KmsErrorCode, number>> = {
  KMSInternalException: 500,
  KeyUnavailableException: 500,
  DependencyTimeoutException: 503,
  DryRunOperationException: 412,
};

const GRPC: Record<KmsErrorCode, status> = {
  AccessDeniedException: status.PERMISSION_DENIED,
  AlreadyExistsException: status.ALREADY_EXISTS,
  CustomKeyStoreInvalidStateException: status.FAILED_PRECONDITION,
  CustomKeyStoreNotFoundException: status.NOT_FOUND,
  DependencyTimeoutException: status.UNAVAILABLE,
  DisabledException: status.FAILED_PRECONDITION,
  DryRunOperationException: status.ABORTED,
  ExpiredImportTokenException: status.INVALID_ARGUMENT,
  IncorrectKeyException: status.INVALID_ARGUMENT,
  IncorrectKeyMaterialException: status.INVALID_ARGUMENT,
  InvalidAliasNameException: status.INVALID_ARGUMENT,
  InvalidArnException: status.INVALID_ARGUMENT,
  InvalidCiphertextException: status.INVALID_ARGUMENT,
  InvalidGrantIdException: status.INVALID_ARGUMENT,
  InvalidGrantTokenException: status.INVALID_ARGUMENT,
  InvalidImportTokenException: status.INVALID_ARGUMENT,
  InvalidKeyUsageException: status.INVALID_ARGUMENT,
  InvalidMarkerException: status.INVALID_ARGUMENT,
  KeyUnavailableException: status.UNAVAILABLE,
  KMSInternalException: status.INTERNAL,
  KMSInvalidMacException: status.INVALID_ARGUMENT,
  KMSInvalidSignatureException: status.INVALID_ARGUMENT,
  KMSInvalidStateException: status.FAILED_PRECONDITION,
  LimitExceededException: status.RESOURCE_EXHAUSTED,
  MalformedPolicyDocumentException: status.INVALID_ARGUMENT,
  NotFoundException: status.NOT_FOUND,
  TagException: status.INVALID_ARGUMENT,
  ThrottlingException: status.RESOURCE_EXHAUSTED,
  UnsupportedOperationException: status.UNIMPLEMENTED,
  ValidationException: status.INVALID_ARGUMENT,
};

describe("ERROR_TABLE", () => {
  it("has exactly one row per KmsErrorCode", () => {
    expect(Object.keys(ERROR_TABLE).sort()).toEqual([...KMS_ERROR_CODES].sort());
  });

  it.each([...KMS_ERROR_CODES])("%s has a gRPC status other than OK and an HTTP error status", (code) => {
    const row = ERROR_TABLE[code];
    expect(row).toBeDefined();
    expect(row.grpc).not.toBe(status.OK);
    expect(Object.values(status)).toContain(row.grpc);
    expect(row.http).toBeGreaterThanOrEqual(400);
    expect(row.http).toBeLessThan(600);
  });

  it("maps KMSInternalException to gRPC INTERNAL and HTTP 500", () => {
    expect(ERROR_TABLE.KMSInternalException).toEqual({ grpc: status.INTERNAL, http: 500 });
    expect(ERROR_TABLE.KMSInternalException.grpc).toBe(13);
  });

  it.each(KMS_ERROR_CODES.filter((c) => !(c in NOT_400)))("maps the client error %s to HTTP 400", (code) => {
    expect(ERROR_TABLE[code].http).toBe(400);
  });

  it.each(Object.entries(NOT_400))("maps %s to HTTP %i", (code, http) => {
    expect(ERROR_TABLE[code as KmsErrorCode].http).toBe(http);
  });

  it.each(Object.entries(GRPC))("maps %s to gRPC status %i", (code, grpc) => {
    expect(ERROR_TABLE[code as KmsErrorCode].grpc).toBe(grpc);
  });

  it("uses INTERNAL only for KMSInternalException", () => {
    const internal = KMS_ERROR_CODES.filter((c) => ERROR_TABLE[c].grpc === status.INTERNAL);
    expect(internal).toEqual(["KMSInternalException"]);
  });
});

describe("GRPC_ERROR_TYPE_KEY", () => {
  it("is a valid lower-case, non-binary gRPC metadata key", () => {
    expect(GRPC_ERROR_TYPE_KEY).toBe("x-kms-error-type");
    expect(GRPC_ERROR_TYPE_KEY).toMatch(/^[a-z0-9_.-]+$/);
    expect(GRPC_ERROR_TYPE_KEY.endsWith("-bin")).toBe(false);
  });
});
