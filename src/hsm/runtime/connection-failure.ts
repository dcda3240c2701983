import type { ConnectionFailure } from "../../kms/key-store-connections.js";
import { CKR, rvClass, rvName, rvOf } from "./return-values.js";
import { CallTimeoutError } from "./session-pool.js";

const CKR_PIN_INCORRECT = 0xa0;
const CKR_PIN_LOCKED = 0xa4;

/**
 * Why a token could not be opened, as an AWS ConnectionErrorCode plus the reason for the operator. The reason
 * is the error's message (PKCS#11 return value names, PIN file paths — never a PIN).
 */
export function explainConnectionFailure(err: unknown): ConnectionFailure {
  const reason = err instanceof Error ? err.message : String(err);
  const rv = rvOf(err);
  if (rv === CKR_PIN_INCORRECT || /^PIN (file|environment)/.test(reason)) return { code: "INVALID_CREDENTIALS", reason };
  if (rv === CKR_PIN_LOCKED) return { code: "USER_LOCKED_OUT", reason };
  if (/^no token labelled|tokens are labelled/.test(reason)) return { code: "CLUSTER_NOT_FOUND", reason };
  return { code: "INTERNAL_ERROR", reason };
}

/**
 * Why a connected key store went FAILED at run time (device.ts `tokenFault`), as an AWS ConnectionErrorCode:
 * the device or token is gone → CLUSTER_NOT_FOUND; the sessions, login or object handles that tie p11kms
 * to the token were lost (closed behind its back, logged out) → NETWORK_ERRORS, the nearest AWS notion of
 * a lost connection; anything else (CKR_DEVICE_ERROR, CKR_DEVICE_MEMORY) → INTERNAL_ERROR.
 */
export function explainDeviceFault(op: string, rv: number | undefined, cause?: unknown): ConnectionFailure {
  // A call that never answered: the device is unreachable as far as p11kms can tell.
  if (cause instanceof CallTimeoutError) return { code: "NETWORK_ERRORS", reason: `PKCS#11 ${op} did not answer within ${cause.timeoutMs} ms` };
  const reason = `PKCS#11 ${op} failed with ${rvName(rv)}`;
  if (rv === CKR.DEVICE_REMOVED || rv === CKR.TOKEN_NOT_PRESENT || rv === CKR.TOKEN_NOT_RECOGNIZED) {
    return { code: "CLUSTER_NOT_FOUND", reason };
  }
  if (
    rvClass(rv) === "session" ||
    rv === CKR.USER_NOT_LOGGED_IN ||
    rv === CKR.KEY_HANDLE_INVALID ||
    rv === CKR.OBJECT_HANDLE_INVALID
  ) {
    return { code: "NETWORK_ERRORS", reason };
  }
  return { code: "INTERNAL_ERROR", reason };
}
