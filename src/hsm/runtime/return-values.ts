/**
 * PKCS#11 return values that p11kms reacts to, and their classification. The raw value is kept on the
 * error for logs; what a client sees is decided per operation (see ops/aes.ts `classifyDecrypt`).
 */
export const CKR = {
  OK: 0x0,
  GENERAL_ERROR: 0x5,
  FUNCTION_FAILED: 0x6,
  ARGUMENTS_BAD: 0x7,
  ATTRIBUTE_SENSITIVE: 0x11,
  DATA_INVALID: 0x20,
  DATA_LEN_RANGE: 0x21,
  DEVICE_ERROR: 0x30,
  DEVICE_MEMORY: 0x31,
  DEVICE_REMOVED: 0x32,
  ENCRYPTED_DATA_INVALID: 0x40,
  ENCRYPTED_DATA_LEN_RANGE: 0x41,
  AEAD_DECRYPT_FAILED: 0x35,
  KEY_HANDLE_INVALID: 0x60,
  KEY_NOT_WRAPPABLE: 0x69,
  KEY_UNEXTRACTABLE: 0x6a,
  OBJECT_HANDLE_INVALID: 0x82,
  MECHANISM_INVALID: 0x70,
  MECHANISM_PARAM_INVALID: 0x71,
  OPERATION_ACTIVE: 0x90,
  OPERATION_NOT_INITIALIZED: 0x91,
  SESSION_CLOSED: 0xb0,
  SESSION_COUNT: 0xb1,
  SIGNATURE_INVALID: 0xc0,
  SIGNATURE_LEN_RANGE: 0xc1,
  SESSION_HANDLE_INVALID: 0xb3,
  TOKEN_NOT_PRESENT: 0xe0,
  TOKEN_NOT_RECOGNIZED: 0xe1,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  BUFFER_TOO_SMALL: 0x150,
  CRYPTOKI_NOT_INITIALIZED: 0x190,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

/** The PKCS#11 return value carried by a pkcs11js error, if any. */
export function rvOf(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "number") return err.code;
  return undefined;
}

/**
 * How p11kms reacts to a return value, whatever the operation (the per-operation classifiers in the ops
 * modules decide first which values are the caller's fault):
 * - "session": this one session is unusable (its handle is gone, or an operation is stuck on it) but the
 *   call itself never ran — the pool drops the session and runs the call once more on a fresh one;
 * - "token": the token cannot serve this process any more as it stands — the device is gone, the login
 *   is gone, or the object handles p11kms cached were revoked (SoftHSM2 revokes every private-object
 *   handle when the last session closes, and every handle when its token directory disappears). The key
 *   store goes FAILED and is re-opened in the background (see docs/operations.md, "Device faults");
 * - "other": anything else (bad input the operation did not classify, a module bug): internal error.
 *
 * KEY_HANDLE_INVALID and OBJECT_HANDLE_INVALID are "other" here: one key's object went away (a call racing
 * that key's deletion, an object destroyed behind our back), which is that key's problem, not the store's.
 * The device layer makes them token-level only when the token itself is the cause — the session is no
 * longer logged in (a logout revokes private-object handles) or the token no longer answers (SoftHSM2
 * refuses every handle once its token directory is gone); see device.ts.
 */
export type RvClass = "session" | "token" | "other";

const SESSION_RVS: ReadonlySet<number> = new Set([CKR.SESSION_HANDLE_INVALID, CKR.SESSION_CLOSED, CKR.OPERATION_ACTIVE]);
const TOKEN_RVS: ReadonlySet<number> = new Set([
  CKR.DEVICE_ERROR,
  CKR.DEVICE_MEMORY,
  CKR.DEVICE_REMOVED,
  CKR.TOKEN_NOT_PRESENT,
  CKR.TOKEN_NOT_RECOGNIZED,
  CKR.USER_NOT_LOGGED_IN,
  CKR.CRYPTOKI_NOT_INITIALIZED,
]);

export function rvClass(rv: number | undefined): RvClass {
  if (rv === undefined) return "other";
  if (SESSION_RVS.has(rv)) return "session";
  if (TOKEN_RVS.has(rv)) return "token";
  return "other";
}

/** A key or object handle that does not (or no longer) name an object. */
export function isHandleError(rv: number | undefined): boolean {
  return rv === CKR.KEY_HANDLE_INVALID || rv === CKR.OBJECT_HANDLE_INVALID;
}

/**
 * Errors after which the session cannot be trusted for the next operation (an operation may still be
 * active on it, or the handle is gone): the pool closes such a session instead of reusing it.
 */
export function poisonsSession(rv: number | undefined): boolean {
  return rv === CKR.BUFFER_TOO_SMALL || rvClass(rv) !== "other";
}

/** The CKR_ name of a return value, for logs and metrics ("0x…" when p11kms has no name for it). */
export function rvName(rv: number | undefined): string {
  if (rv === undefined) return "none";
  const name = RV_NAMES.get(rv);
  return name ? `CKR_${name}` : `0x${rv.toString(16)}`;
}
const RV_NAMES = new Map<number, string>(Object.entries(CKR).map(([k, v]) => [v, k]));

/**
 * For AES-GCM decryption, the values that mean "this ciphertext does not authenticate". SoftHSM2 2.6.1
 * reports a tag mismatch as CKR_GENERAL_ERROR; other modules use ENCRYPTED_DATA_INVALID or (v3.0)
 * AEAD_DECRYPT_FAILED.
 */
export function isGcmAuthFailure(rv: number | undefined): boolean {
  return (
    rv === CKR.GENERAL_ERROR ||
    rv === CKR.ENCRYPTED_DATA_INVALID ||
    rv === CKR.ENCRYPTED_DATA_LEN_RANGE ||
    rv === CKR.AEAD_DECRYPT_FAILED
  );
}

/** For C_Verify (signatures and MACs): the values that mean "does not verify", not "could not check". */
export function isVerifyFailure(rv: number | undefined): boolean {
  return rv === CKR.SIGNATURE_INVALID || rv === CKR.SIGNATURE_LEN_RANGE;
}

/**
 * For RSA-OAEP decryption, the values that mean "this ciphertext does not decode". SoftHSM2 reports a bad
 * OAEP padding as CKR_GENERAL_ERROR, like a bad GCM tag.
 */
export function isRsaDecryptFailure(rv: number | undefined): boolean {
  return (
    rv === CKR.GENERAL_ERROR ||
    rv === CKR.DATA_INVALID ||
    rv === CKR.DATA_LEN_RANGE ||
    rv === CKR.ENCRYPTED_DATA_INVALID ||
    rv === CKR.ENCRYPTED_DATA_LEN_RANGE
  );
}
