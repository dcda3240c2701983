/**
 * Why an envelope message was refused. Decryption errors never say which byte was wrong beyond what an
 * attacker already knows (the frame number), and never carry key material or plaintext.
 */
export type EnvelopeErrorCode =
  /** Not an envelope message, or its structure is invalid. */
  | "MalformedMessage"
  /** A format version or algorithm suite this build does not know. */
  | "UnsupportedFormat"
  /** The data key does not match the header's key commitment (a message crafted to open two ways). */
  | "CommitmentMismatch"
  /** The header's authentication tag did not verify (the header was edited). */
  | "HeaderAuthenticationFailed"
  /** A frame's authentication tag did not verify (edited, reordered, or from another message). */
  | "FrameAuthenticationFailed"
  /** The message ended before its final frame. */
  | "Truncated"
  /** Bytes follow the final frame. */
  | "TrailingData"
  /** The message's encryption context lacks a pair the caller requires. */
  | "ContextMismatch"
  /** None of the encrypted data keys could be decrypted with the keyring's keys. */
  | "NoDecryptableDataKey"
  /** The plaintext's length differs from the length declared when encryption started. */
  | "PlaintextLengthMismatch"
  /** The caller's input is invalid (bad options, too large). */
  | "InvalidInput";

export class EnvelopeError extends Error {
  override readonly name = "EnvelopeError";

  constructor(
    readonly code: EnvelopeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
