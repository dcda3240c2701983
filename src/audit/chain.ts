import { createHash } from "node:crypto";

/**
 * The audit log's hash chain. Every line of the log is one JSON record carrying `auditChain: {seq, prevHash}`:
 * its sequence number (consecutive over the whole log, across rotated files and restarts) and the SHA-256
 * (hex) of the previous line's exact bytes. Changing, removing, inserting or reordering a line breaks the
 * link of the line after it. Digest records are links of the same chain whose `digest` part — which
 * contains the chain head, prevHash — is signed with the audit signing key held in the token, so a
 * verifier holding the public key can tell the chain up to each digest is the one the daemon wrote.
 */
export interface ChainLink {
  readonly seq: number;
  readonly prevHash: string;
}

/** prevHash of the very first record of a log. */
export const GENESIS_HASH = "0".repeat(64);

/**
 * Why a digest was written. "shutdown" marks a clean end: a log that ends otherwise may have lost its tail.
 * "recovery" replaces "start" after an unclean end whose unsigned tail checked out (recovery.ts).
 */
export type DigestReason = "start" | "recovery" | "interval" | "count" | "rotate" | "shutdown";

export interface DigestBody {
  readonly time: string;
  readonly reason: DigestReason;
  /** Sequence number of the first record after the previous digest (of this run or, at start, the last one). */
  readonly firstSeq: number;
  /** Event records since the previous digest. */
  readonly eventCount: number;
  /** SHA-256 (hex) of the DER SubjectPublicKeyInfo of the signing key. */
  readonly keyFingerprint: string;
  readonly signingAlgorithm: "ECDSA_SHA_256";
  /** At start: whether the log's previous run ended with a shutdown digest (false: crash, or a truncated tail). */
  readonly previousRunClean?: boolean;
  /** At start: bytes of an unterminated last line (a write cut short, never acknowledged) that were removed. */
  readonly tornBytesRemoved?: number;
  /** Recovery: records of the previous run after its last digest, checked and covered by this digest. */
  readonly recoveredRecords?: number;
  /** At start after an unclean end: problems found in the previous run's unsigned tail, which is therefore not vouched for. */
  readonly tailProblems?: number;
}

export interface DigestRecord {
  readonly recordType: "Digest";
  readonly auditChain: ChainLink;
  readonly digest: DigestBody;
  /** Base64 ECDSA P-256 signature (IEEE P1363 r‖s) over {@link digestSigningInput}. */
  readonly signature: string;
}

export function hashLine(line: string): string {
  return createHash("sha256").update(line, "utf8").digest("hex");
}

/** The bytes a digest's signature covers: the record without its signature, serialised canonically. */
export function digestSigningInput(r: Pick<DigestRecord, "auditChain" | "digest">): Buffer {
  return Buffer.from(canonicalJson({ recordType: "Digest", auditChain: r.auditChain, digest: r.digest }), "utf8");
}

/** JSON with object keys sorted at every level, so signer and verifier serialise identically. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export function isDigestRecord(r: unknown): r is DigestRecord {
  return typeof r === "object" && r !== null && (r as { recordType?: unknown }).recordType === "Digest";
}

export function fingerprint(spki: Buffer): string {
  return createHash("sha256").update(spki).digest("hex");
}
