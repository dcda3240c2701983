/**
 * The one error type of the domain. Codes are the AWS KMS exception names, so both facades can send
 * them as they are; `cause` keeps the underlying failure (a PKCS#11 return value, a database error) for
 * the log and is never serialised to a client.
 */
export const KMS_ERROR_CODES = [
  "AccessDeniedException",
  "AlreadyExistsException",
  "CustomKeyStoreInvalidStateException",
  "CustomKeyStoreNotFoundException",
  "DependencyTimeoutException",
  "DisabledException",
  "DryRunOperationException",
  "ExpiredImportTokenException",
  "IncorrectKeyException",
  "IncorrectKeyMaterialException",
  "InvalidAliasNameException",
  "InvalidArnException",
  "InvalidCiphertextException",
  "InvalidGrantIdException",
  "InvalidGrantTokenException",
  "InvalidImportTokenException",
  "InvalidKeyUsageException",
  "InvalidMarkerException",
  "KeyUnavailableException",
  "KMSInternalException",
  "KMSInvalidMacException",
  "KMSInvalidSignatureException",
  "KMSInvalidStateException",
  "LimitExceededException",
  "MalformedPolicyDocumentException",
  "NotFoundException",
  "TagException",
  "ThrottlingException",
  "UnsupportedOperationException",
  "ValidationException",
] as const;
export type KmsErrorCode = (typeof KMS_ERROR_CODES)[number];

export class KmsError extends Error {
  override readonly name = "KmsError";

  constructor(
    readonly code: KmsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Shorthand for the most common client error. */
export function validation(message: string): KmsError {
  return new KmsError("ValidationException", message);
}

/**
 * Normalises anything thrown into a KmsError. A non-KmsError is a bug or a device fault: the client gets a
 * generic KMSInternalException (its text could leak internals) and the original rides along as `cause`.
 */
export function toKmsError(err: unknown): KmsError {
  if (err instanceof KmsError) return err;
  return new KmsError("KMSInternalException", "The request failed due to an internal error.", { cause: err });
}
