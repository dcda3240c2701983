/**
 * The audit signing key: an ECDSA P-256 key pair held in the token, private half sensitive and
 * non-extractable, found again by label on every start. Only its public half leaves the token.
 */
export interface AuditSigner {
  /** DER SubjectPublicKeyInfo of the signing key. */
  publicKey(): Promise<Buffer>;
  /** ECDSA P-256 over SHA-256 of `data`, as IEEE P1363 r‖s (64 bytes). */
  sign(data: Buffer): Promise<Buffer>;
}
