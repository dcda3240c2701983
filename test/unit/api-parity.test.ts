import { describe, expect, it } from "vitest";
import { OPERATIONS } from "../../src/api/aws/operations.js";
import { KeyManagementServiceService } from "../../src/gen/p11kms/v1/kms.js";
import { DEFAULT_OPERATION_RATES, isCryptographicOperation } from "../../src/kms/quota-classes.js";

/**
 * gRPC methods with no AWS facade entry, by nature: WatchAuditEvents is a server stream of live audit
 * events (AWS KMS has none; CloudTrail delivers events out of band), which AWS JSON 1.1 cannot carry.
 */
const GRPC_ONLY = new Set(["WatchAuditEvents"]);
const grpcOperations = Object.values(KeyManagementServiceService)
  .map((m) => m.path.split("/").pop()!)
  .filter((op) => !GRPC_ONLY.has(op));

describe("both APIs serve the same operations", () => {
  it("every gRPC method has an AWS facade entry and vice versa", () => {
    expect([...grpcOperations].sort()).toEqual(Object.keys(OPERATIONS).sort());
  });

  it.each(Object.keys(OPERATIONS))("%s has a quota class (a shared cryptographic quota or a rate of its own)", (op) => {
    expect(isCryptographicOperation(op) || Object.hasOwn(DEFAULT_OPERATION_RATES, op)).toBe(true);
  });
});
