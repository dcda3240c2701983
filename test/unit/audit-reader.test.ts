import { appendFileSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { auditRecords } from "../helpers/audit.js";

// The e2e tests read the audit log while the daemon runs; the daemon rotates it right after acknowledging
// the batch that filled it, so the test reader must not lose a file that is renamed while it reads.

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "p11kms-audit-reader-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const record = (seq: number) => `${JSON.stringify({ eventName: `E${seq}`, auditChain: { seq, prevHash: "x" } })}\n`;
const live = () => join(dir, "audit.jsonl");
const seqs = (rs: Record<string, unknown>[]) => rs.map((r) => (r.auditChain as { seq: number }).seq);

/** What the daemon's rotation does on disk: rename the live file under its first seq, start a new one. */
function rotate(firstSeq: number, next: number[]): void {
  renameSync(live(), `${live()}.${String(firstSeq).padStart(12, "0")}`);
  writeFileSync(live(), next.map(record).join(""));
}

describe("auditRecords (e2e audit log reader)", () => {
  it("keeps the records of a live file rotated while it reads", () => {
    writeFileSync(live(), [0, 1, 2].map(record).join(""));
    expect(seqs(auditRecords(dir, () => rotate(0, [3])))).toEqual([0, 1, 2]);
    expect(seqs(auditRecords(dir))).toEqual([0, 1, 2, 3]);
  });

  it("keeps chain order when the file it opened and a newer one are both rotated while it reads", () => {
    writeFileSync(live(), [0, 1].map(record).join(""));
    const twoRotations = () => {
      rotate(0, [2, 3]);
      rotate(2, [4]);
    };
    expect(seqs(auditRecords(dir, twoRotations))).toEqual([0, 1, 2, 3]);
  });

  it("reads the rotated files when there is no live file (between a rotation's rename and its reopen)", () => {
    writeFileSync(live(), [0, 1].map(record).join(""));
    renameSync(live(), `${live()}.000000000000`);
    expect(seqs(auditRecords(dir))).toEqual([0, 1]);
  });

  it("leaves out a last line the daemon is still writing", () => {
    writeFileSync(live(), [0, 1].map(record).join(""));
    appendFileSync(live(), record(2).slice(0, 20));
    expect(seqs(auditRecords(dir))).toEqual([0, 1]);
  });
});
