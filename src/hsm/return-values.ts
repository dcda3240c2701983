/**
 * PKCS#11 return values that p11kms reacts to, and their classification. The raw value is kept on the
 * error for logs; what a client sees is decided per operation (see pkcs11-key-store.ts).
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
  SIGNATURE_INVALID: 0xc0,
  SIGNATURE_LEN_RANGE: 0xc1,
  SESSION_HANDLE_INVALID: 0xb3,
  TOKEN_NOT_PRESENT: 0xe0,
  USER_ALREADY_LOGGED_IN: 0x100,
  USER_NOT_LOGGED_IN: 0x101,
  BUFFER_TOO_SMALL: 0x150,
  CRYPTOKI_ALREADY_INITIALIZED: 0x191,
} as const;

/** The PKCS#11 return value carried by a pkcs11js error, if any. */
export function rvOf(err: unknown): number | undefined {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "number") return err.code;
  return undefined;
}

/**
 * Errors after which the session cannot be trusted for the next operation (an operation may still be
 * active on it, or the handle is gone): the pool closes such a session instead of reusing it.
 */
export function poisonsSession(rv: number | undefined): boolean {
  return (
    rv === CKR.BUFFER_TOO_SMALL ||
    rv === CKR.OPERATION_ACTIVE ||
    rv === CKR.SESSION_CLOSED ||
    rv === CKR.SESSION_HANDLE_INVALID ||
    rv === CKR.DEVICE_ERROR ||
    rv === CKR.DEVICE_REMOVED ||
    rv === CKR.TOKEN_NOT_PRESENT ||
    rv === CKR.USER_NOT_LOGGED_IN
  );
}

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
