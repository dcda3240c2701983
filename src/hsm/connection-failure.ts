import type { ConnectionFailure } from "../kms/key-store-connections.js";
import { rvOf } from "./return-values.js";

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
