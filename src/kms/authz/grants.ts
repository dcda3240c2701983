import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { KmsError } from "../errors.js";
import type { EncryptionContext } from "../types.js";

/** Every operation a grant can allow (AWS GrantOperation, less the ones of key specs this service lacks). */
export const GRANT_OPERATIONS = [
  "CreateGrant",
  "Decrypt",
  "DescribeKey",
  "Encrypt",
  "GenerateDataKey",
  "GenerateDataKeyPair",
  "GenerateDataKeyPairWithoutPlaintext",
  "GenerateDataKeyWithoutPlaintext",
  "GenerateMac",
  "GetPublicKey",
  "ReEncryptFrom",
  "ReEncryptTo",
  "RetireGrant",
  "Sign",
  "Verify",
  "VerifyMac",
] as const;
export type GrantOperation = (typeof GRANT_OPERATIONS)[number];

/**
 * Operations an encryption context constraint can be put on: those that take an EncryptionContext, plus
 * DescribeKey, RetireGrant and CreateGrant, on which (as AWS) the constraint does not apply to the request.
 */
export const CONSTRAINABLE_OPERATIONS: readonly GrantOperation[] = [
  "CreateGrant",
  "Decrypt",
  "DescribeKey",
  "Encrypt",
  "GenerateDataKey",
  "GenerateDataKeyPair",
  "GenerateDataKeyPairWithoutPlaintext",
  "GenerateDataKeyWithoutPlaintext",
  "ReEncryptFrom",
  "ReEncryptTo",
  "RetireGrant",
];
const CONTEXT_FREE: ReadonlySet<string> = new Set(["CreateGrant", "DescribeKey", "RetireGrant"]);

export interface GrantConstraints {
  readonly encryptionContextSubset?: EncryptionContext | undefined;
  readonly encryptionContextEquals?: EncryptionContext | undefined;
}

export interface GrantRecord {
  /** 64 hex characters, as AWS grant ids. */
  readonly grantId: string;
  readonly keyId: string;
  readonly name: string | undefined;
  readonly granteePrincipal: string;
  readonly retiringPrincipal: string | undefined;
  /** The account of the principal that created the grant. */
  readonly issuingAccount: string;
  readonly operations: readonly GrantOperation[];
  readonly constraints: GrantConstraints | undefined;
  readonly creationDate: Date;
  /** SHA-256 of the token's secret part; the token itself is returned once and never stored. */
  readonly tokenHash: string;
}

/** AWS's grant quotas: grants per key, and grants for one grantee principal on one key. */
export const MAX_GRANTS_PER_KEY = 50_000;
export const MAX_GRANTS_PER_GRANTEE_PER_KEY = 500;

/** True when the grant's constraints admit a request with this encryption context. */
export function constraintsHold(c: GrantConstraints | undefined, operation: string, context: EncryptionContext | undefined): boolean {
  if (!c || CONTEXT_FREE.has(operation)) return true;
  const ctx = context ?? {};
  if (c.encryptionContextEquals) {
    const want = Object.entries(c.encryptionContextEquals);
    if (want.length !== Object.keys(ctx).length) return false;
    if (!want.every(([k, v]) => Object.hasOwn(ctx, k) && ctx[k] === v)) return false;
  }
  if (c.encryptionContextSubset) {
    if (!Object.entries(c.encryptionContextSubset).every(([k, v]) => Object.hasOwn(ctx, k) && ctx[k] === v)) return false;
  }
  return true;
}

/** Whether constraints `child` are at least as strict as `parent` (a grant created through a grant). */
export function atLeastAsStrict(parent: GrantConstraints | undefined, child: GrantConstraints | undefined): boolean {
  if (!parent || (!parent.encryptionContextEquals && !parent.encryptionContextSubset)) return true;
  if (!child) return false;
  // Anything the child admits must be admitted by the parent: test the parent against the child's context.
  if (child.encryptionContextEquals) return constraintsHold(parent, "Encrypt", child.encryptionContextEquals);
  if (parent.encryptionContextEquals) return false;
  return constraintsHold(parent, "Encrypt", child.encryptionContextSubset);
}

/** Whether `grant` allows `operation` to `principal` with this encryption context. */
export function grantAllows(grant: GrantRecord, principal: string, operation: string, context: EncryptionContext | undefined): boolean {
  return (
    grant.granteePrincipal === principal &&
    (grant.operations as readonly string[]).includes(operation) &&
    constraintsHold(grant.constraints, operation, context)
  );
}

/** A fresh grant id and token. The token carries the grant id and a secret; only the secret's hash is stored. */
export function newGrantCredentials(): { grantId: string; token: string; tokenHash: string } {
  const id = randomBytes(32);
  const secret = randomBytes(32);
  const token = Buffer.concat([Buffer.from([1]), id, secret]).toString("base64url");
  return { grantId: id.toString("hex"), token, tokenHash: hashSecret(secret) };
}

function hashSecret(secret: Buffer): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** The grant id a token names; InvalidGrantTokenException when it is not a token this service issued. */
export function parseGrantToken(token: string): { grantId: string; secretHash: string } {
  const raw = token.length <= 8192 && /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, "base64url") : Buffer.alloc(0);
  if (raw.length !== 65 || raw[0] !== 1) throw invalidGrantToken();
  return { grantId: raw.subarray(1, 33).toString("hex"), secretHash: hashSecret(raw.subarray(33)) };
}

/** Whether `token` is the token of `grant` (constant-time comparison of the secret hashes). */
export function tokenMatches(grant: GrantRecord, secretHash: string): boolean {
  const a = Buffer.from(grant.tokenHash, "hex");
  const b = Buffer.from(secretHash, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

export function invalidGrantToken(): KmsError {
  return new KmsError("InvalidGrantTokenException", "The grant token is not valid.");
}
