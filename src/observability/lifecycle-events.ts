import type { LifecycleEvents } from "../kms/deps.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";

/**
 * Lifecycle events as log lines and metrics. The pending-deletion alarm has a line of its own
 * (`event: "PendingDeletionKeyUsed"`, level warn) so it can be alerted on: someone still uses a key that is
 * scheduled to be destroyed, and will lose their data when it is.
 */
export function lifecycleEvents(log: Logger, metrics: Metrics): LifecycleEvents {
  return {
    pendingDeletionUse: ({ keyId, operation, deletionDate }) => {
      metrics.pendingDeletionUse.inc({ operation });
      log.warn(
        { event: "PendingDeletionKeyUsed", keyId, operation, deletionDate: deletionDate?.toISOString() },
        "A KEY PENDING DELETION WAS USED: cancel the deletion (CancelKeyDeletion) if it is still needed",
      );
    },
    keyDeleted: ({ keyId, keyStoreId, versions }) => {
      metrics.keysDeleted.inc();
      log.warn({ event: "KeyDeleted", keyId, keyStoreId, versions }, "key deleted: its token objects were destroyed");
    },
    keyRotated: ({ keyId, version, rotationType }) => {
      metrics.keyRotations.inc({ type: rotationType });
      log.info({ event: "KeyRotated", keyId, version, rotationType }, "key rotated");
    },
    materialImported: ({ keyId, keyStoreId, wrappingAlgorithm, unwrapPath, expirationModel, validTo, reimport }) => {
      log.info(
        { event: "KeyMaterialImported", keyId, keyStoreId, wrappingAlgorithm, unwrapPath, expirationModel, validTo: validTo?.toISOString(), reimport },
        reimport
          ? "the same key material was imported again: only its expiration changed"
          : unwrapPath === "device"
            ? "key material imported (unwrapped inside the token)"
            : "key material imported (OAEP decoded in the process: software path)",
      );
    },
    materialRemoved: ({ keyId, keyStoreId, reason }) => {
      log.warn({ event: "KeyMaterialRemoved", keyId, keyStoreId, reason }, "imported key material destroyed: the key is PendingImport");
    },
    jobDeferred: ({ keyId, job, reason, err }) => {
      metrics.lifecycleDeferred.inc({ job });
      log.warn({ event: "LifecycleJobDeferred", keyId, job, reason, err }, "a due key lifecycle job was deferred; retried next pass");
    },
  };
}
