import { type KeyObject, createPublicKey, verify as verifySignature } from "node:crypto";
import { type ChainLink, type DigestRecord, GENESIS_HASH, digestSigningInput, fingerprint, hashLine, isDigestRecord } from "./chain.js";

export interface LogFile {
  readonly name: string;
  readonly text: string;
}

/** Where a record is: file, 1-based line, and its sequence number when it has one. */
export interface Position {
  readonly file: string;
  readonly line: number;
  readonly seq?: number | undefined;
}

export type ProblemKind = "malformed" | "modified" | "deleted" | "inserted" | "reordered" | "bad-signature" | "unknown-key";

export interface Problem {
  readonly kind: ProblemKind;
  readonly at: Position;
  readonly message: string;
}

export interface VerifyReport {
  readonly records: number;
  readonly events: number;
  readonly digests: number;
  readonly firstSeq: number | undefined;
  readonly lastSeq: number | undefined;
  /** Sequence number of the last record a valid signature covers. */
  readonly lastSignedSeq: number | undefined;
  /** Tampering: any entry means the log is not what the daemon wrote. */
  readonly problems: Problem[];
  /** What cannot be vouched for (unsigned tail, unclean end, missing beginning), not proof of tampering. */
  readonly warnings: string[];
  /**
   * Unclean ends the daemon recovered from: at each `recovery` digest, the previous run's records after its last
   * digest were checked and signed. Not a warning — but what that run wrote after them, if anything (a crash
   * mid-write, or a truncation while the daemon was down), cannot be known from the log.
   */
  readonly recoveries: { seq: number; recoveredFromSeq: number; recoveredRecords: number; tornBytesRemoved?: number }[];
}

const MAX_PROBLEMS = 100;

/**
 * Checks audit log files given in chain order: every line's link to the one before it (hash and sequence
 * number), and every digest's signature with the audit signing key. Reports each break at the record
 * where it shows, then resynchronises on that record, so one edit is one problem.
 */
export function verifyLog(files: readonly LogFile[], publicKeySpki: Buffer): VerifyReport {
  const key: KeyObject = createPublicKey({ key: publicKeySpki, format: "der", type: "spki" });
  const keyFingerprint = fingerprint(publicKeySpki);
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const recoveries: VerifyReport["recoveries"] = [];
  let prevHash: string | undefined;
  let prevPos: Position | undefined;
  let expected: number | undefined;
  let maxSeq = -1;
  let records = 0;
  let events = 0;
  let digests = 0;
  let firstSeq: number | undefined;
  let lastSeq: number | undefined;
  let lastSignedSeq: number | undefined;
  let last: DigestRecord | { auditChain: ChainLink } | undefined;
  const problem = (kind: ProblemKind, at: Position, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push({ kind, at, message: `${where(at)}: ${message}` });
  };

  const all = files.flatMap((f, fi) => {
    const lines = f.text.split("\n");
    if (lines.at(-1) === "") lines.pop();
    else if (lines.length > 0 && fi === files.length - 1) {
      // The end of the newest file: a batch being written by a running daemon (readers can see it half-way),
      // or one a crash cut short — never acknowledged; the daemon cuts it off at its next start. Like a
      // truncated tail, it is something verify cannot vouch for, not proof of tampering.
      warnings.push(`${f.name}:${lines.length}: the last line is not terminated (a write in progress, or cut short by a crash) and is not checked`);
      lines.pop();
    } else if (lines.length > 0) problem("malformed", { file: f.name, line: lines.length }, "the last line is not terminated (a cut-off write or an edit)");
    return lines.map((text, i) => ({ text, pos: { file: f.name, line: i + 1 } as Position }));
  });
  // Sequence ranges reported missing, in case they turn up later (then they were moved, not deleted).
  const gaps: { from: number; to: number; index: number }[] = [];

  all.forEach(({ text: line, pos: pos0 }, i) => {
    const rec = parse(line);
    if (!rec) {
      problem("malformed", pos0, "not an audit record (modified)");
      prevHash = hashLine(line);
      prevPos = pos0;
      if (expected !== undefined) expected++;
      return;
    }
    const { seq, prevHash: link } = rec.auditChain;
    const pos: Position = { ...pos0, seq };
    records++;
    firstSeq ??= seq;
    lastSeq = seq;
    if (expected === undefined) {
      if (seq === 0 && link !== GENESIS_HASH) problem("modified", pos, "the first record of the log does not start the chain");
      if (seq !== 0) warnings.push(`the chain starts at seq ${seq} (${where(pos)}): earlier records were not given (rotated away or deleted) and cannot be checked`);
    } else if (seq > expected) {
      gaps.push({ from: expected, to: seq - 1, index: problems.length });
      problem("deleted", pos, `records seq ${expected}..${seq - 1} are missing before this one`);
    } else if (seq === expected - 1 && prevPos && link === linkOf(all[i - 1]?.text)) {
      // Two records claim the same place in the chain: the one the next record links to is genuine.
      const next = parse(all[i + 1]?.text ?? "");
      const currentGenuine = next !== undefined && next.auditChain.prevHash === hashLine(line);
      problem("inserted", currentGenuine ? prevPos : pos, `a second record with seq ${seq}, not part of the chain (inserted)`);
      if (!currentGenuine) return; // the chain goes on from the genuine one
    } else if (seq < expected) {
      const gap = gaps.find((g) => seq >= g.from && seq <= g.to);
      const moved = gap ? problems[gap.index] : undefined;
      if (moved) problems[gap!.index] = { ...moved, kind: "reordered", message: `${moved.message.replace("are missing before this one", "are not in their place")} (seq ${seq} turns up at ${where(pos)})` };
      problem(seq <= maxSeq ? "reordered" : "inserted", pos, `seq ${seq} where seq ${expected} was expected (a record inserted, duplicated or moved)`);
    } else if (link !== prevHash) {
      problem("modified", prevPos ?? pos, `the record's hash does not match the link stored in seq ${seq} (this record, or that link, was modified)`);
    }
    if (isDigestRecord(rec)) {
      digests++;
      if (rec.digest.keyFingerprint !== keyFingerprint) {
        problem("unknown-key", pos, `digest signed by key ${rec.digest.keyFingerprint}, not by the given public key ${keyFingerprint}`);
      } else if (!validSignature(rec, key)) {
        problem("bad-signature", pos, "the digest's signature does not verify (the digest was modified or forged)");
      } else {
        lastSignedSeq = seq;
        if (rec.digest.reason === "recovery") {
          const { firstSeq: recoveredFromSeq, recoveredRecords = 0, tornBytesRemoved } = rec.digest;
          recoveries.push({ seq, recoveredFromSeq, recoveredRecords, ...(tornBytesRemoved ? { tornBytesRemoved } : {}) });
        }
      }
      if (rec.digest.reason === "start" && rec.digest.previousRunClean === false) {
        warnings.push(
          `${where(pos)}: the daemon started after a run that did not end with a shutdown digest (a crash, or its tail was truncated): records of that run after the last digest before this one were never signed by it`,
        );
      }
    } else {
      events++;
    }
    maxSeq = Math.max(maxSeq, seq);
    expected = Math.max(expected ?? 0, seq + 1);
    prevHash = hashLine(line);
    prevPos = pos;
    last = rec;
  });

  if (records === 0) warnings.push("no audit records");
  const unsigned = lastSeq === undefined ? 0 : lastSeq - (lastSignedSeq ?? (firstSeq ?? 0) - 1);
  if (unsigned > 0) {
    warnings.push(
      `${unsigned} record(s) after the last signed digest (seq ${lastSignedSeq ?? "none"}) are not covered by a signature: they, and any records after them, could have been changed or removed without detection`,
    );
  }
  if (last && !(isDigestRecord(last) && last.digest.reason === "shutdown")) {
    warnings.push("the log does not end with a shutdown digest: the daemon is still running, crashed, or the end of the log was truncated");
  }
  return { records, events, digests, firstSeq, lastSeq, lastSignedSeq, problems, warnings, recoveries };
}

function linkOf(line: string | undefined): string | undefined {
  return line === undefined ? undefined : parse(line)?.auditChain.prevHash;
}

function parse(line: string): (DigestRecord | { auditChain: ChainLink }) | undefined {
  try {
    const r = JSON.parse(line) as { auditChain?: { seq?: unknown; prevHash?: unknown } };
    const c = r?.auditChain;
    if (!c || !Number.isSafeInteger(c.seq) || typeof c.prevHash !== "string") return undefined;
    return r as { auditChain: ChainLink };
  } catch {
    return undefined;
  }
}

function validSignature(rec: DigestRecord, key: KeyObject): boolean {
  try {
    const sig = Buffer.from(rec.signature, "base64");
    return verifySignature("sha256", digestSigningInput(rec), { key, dsaEncoding: "ieee-p1363" }, sig);
  } catch {
    return false;
  }
}

function where(p: Position): string {
  return `${p.file}:${p.line}${p.seq !== undefined ? ` (seq ${p.seq})` : ""}`;
}

/** Puts files in chain order by the sequence number of their first record (unreadable ones last, as given). */
export function inChainOrder(files: readonly LogFile[]): LogFile[] {
  const first = (f: LogFile) => parse(f.text.slice(0, f.text.indexOf("\n") >>> 0))?.auditChain.seq ?? Number.MAX_SAFE_INTEGER;
  return files.map((f, i) => ({ f, i, s: first(f) })).sort((a, b) => a.s - b.s || a.i - b.i).map((x) => x.f);
}
