import { KmsError, type KmsErrorCode } from "./errors.js";
import type { KeyRecord, KeyState } from "./types.js";

/**
 * The key-state rules of management operations, as AWS's "key states" table gives them: for each operation,
 * the states it refuses and with which exception (a state not listed is allowed). Cryptographic operations
 * use the one usability rule in rules.ts instead. Creating keys never get here (they do not exist yet).
 */
const PENDING_DELETION: Partial<Record<KeyState, KmsErrorCode>> = { PendingDeletion: "KMSInvalidStateException" };
const STATE_CHANGE: Partial<Record<KeyState, KmsErrorCode>> = {
  PendingDeletion: "KMSInvalidStateException",
  PendingImport: "KMSInvalidStateException",
  Unavailable: "KMSInvalidStateException",
};
const ROTATION_CHANGE: Partial<Record<KeyState, KmsErrorCode>> = {
  Disabled: "DisabledException",
  PendingDeletion: "KMSInvalidStateException",
  PendingImport: "UnsupportedOperationException",
  Unavailable: "KMSInvalidStateException",
};

export const MANAGEMENT_STATE_RULES = {
  DescribeKey: {},
  EnableKey: STATE_CHANGE,
  DisableKey: STATE_CHANGE,
  ScheduleKeyDeletion: PENDING_DELETION,
  CancelKeyDeletion: {
    Enabled: "KMSInvalidStateException",
    Disabled: "KMSInvalidStateException",
    PendingImport: "KMSInvalidStateException",
    Unavailable: "KMSInvalidStateException",
  },
  UpdateKeyDescription: PENDING_DELETION,
  TagResource: PENDING_DELETION,
  UntagResource: PENDING_DELETION,
  ListResourceTags: {},
  CreateAlias: PENDING_DELETION,
  UpdateAlias: PENDING_DELETION,
  ListAliases: {},
  EnableKeyRotation: ROTATION_CHANGE,
  DisableKeyRotation: ROTATION_CHANGE,
  RotateKeyOnDemand: ROTATION_CHANGE,
  GetKeyRotationStatus: { PendingImport: "UnsupportedOperationException" },
  ListKeyRotations: {},
  GetParametersForImport: { PendingDeletion: "KMSInvalidStateException", Unavailable: "KMSInvalidStateException" },
  // Enabled and Disabled keys take the same material again (to change its expiration).
  ImportKeyMaterial: { PendingDeletion: "KMSInvalidStateException", Unavailable: "KMSInvalidStateException" },
  DeleteImportedKeyMaterial: { PendingDeletion: "KMSInvalidStateException", Unavailable: "KMSInvalidStateException" },
  PutKeyPolicy: {},
  GetKeyPolicy: {},
  ListKeyPolicies: {},
  CreateGrant: PENDING_DELETION,
  ListGrants: {},
  RetireGrant: {},
  RevokeGrant: {},
} as const satisfies Record<string, Partial<Record<KeyState, KmsErrorCode>>>;

export type ManagementOperation = keyof typeof MANAGEMENT_STATE_RULES;

/** Throws the exception AWS answers when `operation` meets a key in its (effective) state. */
export function assertStateAllows(key: KeyRecord, operation: ManagementOperation): void {
  const rules: Partial<Record<KeyState, KmsErrorCode>> = MANAGEMENT_STATE_RULES[operation];
  const code = rules[key.keyState];
  if (!code) return;
  const what =
    key.keyState === "PendingDeletion"
      ? "is pending deletion"
      : key.keyState === "Disabled"
        ? "is disabled"
        : operation === "CancelKeyDeletion"
          ? "is not pending deletion"
          : `is in state ${key.keyState}`;
  throw new KmsError(code, `${operation}: key ${key.keyId} ${what}.`);
}
