import { randomUUID } from "node:crypto";
import { noteKey } from "../kms/audit-scope.js";
import { INTERNAL_CALLER } from "../kms/caller.js";
import type { LifecycleEvents } from "../kms/deps.js";
import type { Logger } from "../observability/logger.js";
import type { Auditor } from "./auditor.js";

/**
 * What the daemon does on its own, as audit events of the internal caller (`authMethod: "internal"`, the
 * principal "internal"; CloudTrail records these as AWS service events, with the same names): DeleteKey when the
 * reaper destroys a key at the end of its waiting period, RotateKey for an automatic rotation,
 * DeleteExpiredKeyMaterial when imported material expires. Requests that cause the same effects
 * (RotateKeyOnDemand, DeleteImportedKeyMaterial) are audited as requests already.
 */
export function withInternalAudit(inner: LifecycleEvents, auditor: () => Auditor | undefined, log: Logger): LifecycleEvents {
  const record = (operation: string, keyId: string, version?: number) => {
    const a = auditor();
    if (!a) return;
    const caller = { ...INTERNAL_CALLER, requestId: randomUUID() };
    a.around({ api: "internal", caller, operation }, async (scope) => {
      if (!scope) return;
      scope.request = { keyId };
      noteKey(scope, keyId);
      if (version !== undefined) scope.versions.set(keyId, version);
    }).catch((err: unknown) => log.error({ err, operation, keyId }, "audit event of an internal action could not be written"));
  };
  return {
    ...inner,
    keyDeleted: (e) => {
      inner.keyDeleted(e);
      record("DeleteKey", e.keyId);
    },
    keyRotated: (e) => {
      inner.keyRotated(e);
      if (e.rotationType === "AUTOMATIC") record("RotateKey", e.keyId, e.version);
    },
    materialRemoved: (e) => {
      inner.materialRemoved?.(e);
      if (e.reason === "expired") record("DeleteExpiredKeyMaterial", e.keyId);
    },
  };
}
