import { type FileHandle, open } from "node:fs/promises";
import { isDigestRecord } from "./chain.js";
import { verifyLog } from "./verify.js";

/**
 * Recovery after an unclean stop (docs/audit.md, "Recovery"). A crash leaves the records written after the
 * run's last digest unsigned. At the next start the daemon checks them — each one linked to the one before,
 * sequence numbers consecutive, starting from a digest whose signature verifies — and, if nothing is wrong,
 * signs a `recovery` digest over them, so the crash costs no unsigned records. A tail that does not check out
 * (edited, deleted or inserted records, a forged digest) is never vouched for: the start digest says how
 * many problems were found, and `audit verify` reports them.
 */
export interface TailCheck {
  /** Sequence number of the digest the tail starts after. */
  readonly anchorSeq: number;
  /** Records after it (the unsigned tail), and how many of them are events. */
  readonly records: number;
  readonly events: number;
  /** Problems found in the tail, as `kind at seq N` (no record contents): empty when it checks out. */
  readonly problems: readonly string[];
}

/** Bytes read per step when searching backwards for the last digest. */
const CHUNK = 1 << 20;

/**
 * The previous run's tail: the last digest line of `file` (or, when `file` holds none, the last line of
 * `rotated`, a rotate digest) and every complete line after it. Undefined when no digest is found: nothing
 * to anchor a check on. The file has no torn last line here (the log removed it before).
 */
export async function readUnsignedTail(file: string, rotated: string | undefined): Promise<{ anchor: string; after: string[] } | undefined> {
  const live = await linesBackToDigest(file);
  if (live.anchor !== undefined) return { anchor: live.anchor, after: live.after };
  if (rotated === undefined) return undefined;
  const prev = await linesBackToDigest(rotated);
  // Only the rotated file's own last line may anchor: a rotated file ends with its rotate digest.
  if (prev.anchor === undefined || prev.after.length > 0) return undefined;
  return { anchor: prev.anchor, after: live.after };
}

/** Checks a tail against the audit signing key's public half (DER SubjectPublicKeyInfo). */
export function checkTail(tail: { anchor: string; after: string[] }, publicKeySpki: Buffer): TailCheck {
  const text = [tail.anchor, ...tail.after].map((l) => `${l}\n`).join("");
  const report = verifyLog([{ name: "tail", text }], publicKeySpki);
  const anchorSeq = (JSON.parse(tail.anchor) as { auditChain: { seq: number } }).auditChain.seq;
  const problems = report.problems.map((p) => `${p.kind} at ${p.at.seq !== undefined ? `seq ${p.at.seq}` : `record ${p.at.line - 1} after the digest`}`);
  if (report.lastSignedSeq === undefined || report.lastSignedSeq < anchorSeq) problems.unshift(`the digest at seq ${anchorSeq} does not verify`);
  return { anchorSeq, records: tail.after.length, events: report.events, problems };
}

async function linesBackToDigest(path: string): Promise<{ anchor?: string; after: string[] }> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch {
    return { after: [] };
  }
  try {
    const { size } = await fh.stat();
    const after: string[] = [];
    let end = size;
    // Bytes of a line cut by the chunk boundary, kept as bytes: a UTF-8 character may straddle the boundary.
    let carry = Buffer.alloc(0);
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const chunk = Buffer.alloc(end - start);
      await fh.read(chunk, 0, chunk.length, start);
      let buf = Buffer.concat([chunk, carry]);
      carry = Buffer.alloc(0);
      if (start > 0) {
        // What precedes the first newline may be the end of a line that starts in an earlier chunk.
        const nl = buf.indexOf(0x0a);
        carry = nl < 0 ? buf : buf.subarray(0, nl);
        buf = nl < 0 ? Buffer.alloc(0) : buf.subarray(nl + 1);
      }
      const lines = buf.toString("utf8").split("\n");
      if (lines.at(-1) === "") lines.pop();
      for (let i = lines.length - 1; i >= 0; i--) {
        const line = lines[i]!;
        if (isDigestLine(line)) return { anchor: line, after: after.reverse() };
        after.push(line);
      }
      end = start;
    }
    return { after: after.reverse() };
  } finally {
    await fh.close();
  }
}

function isDigestLine(line: string): boolean {
  try {
    return isDigestRecord(JSON.parse(line));
  } catch {
    return false;
  }
}
