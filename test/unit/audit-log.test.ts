import { generateKeyPairSync, sign } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RequestAuditor } from "../../src/audit/auditor.js";
import { type AuditEvent, buildEvent } from "../../src/audit/event.js";
import { AuditHub } from "../../src/audit/hub.js";
import { KmsError } from "../../src/kms/errors.js";
import type { Logger } from "../../src/observability/logger.js";
import { FileAuditLog, type FileLogOptions } from "../../src/audit/file-log.js";
import type { AuditSigner } from "../../src/audit/signer.js";
import { inChainOrder, type LogFile, verifyLog } from "../../src/audit/verify.js";

// A software ECDSA P-256 key standing in for the token's audit signing key: this file tests the log format
// and the verifier; the key in a real token is tested in test/hsm/audit-signing-key.test.ts.
const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
const spki = pair.publicKey.export({ format: "der", type: "spki" });
const signer: AuditSigner = {
  publicKey: async () => spki,
  sign: async (data) => sign("sha256", data, { key: pair.privateKey, dsaEncoding: "ieee-p1363" }),
};

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "p11kms-audit-"));
  file = join(dir, "audit", "audit.jsonl");
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function event(i: number): AuditEvent {
  const scope = { keys: ["1234abcd-12ab-34cd-56ef-1234567890ab"], versions: new Map([["1234abcd-12ab-34cd-56ef-1234567890ab", 1]]), request: { keyId: `k${i}` } };
  return buildEvent({ region: "us-east-1", accountId: "111122223333" }, "grpc", { principal: "anonymous", authMethod: "insecure", requestId: `r${i}` }, "Encrypt", scope, {}, new Date());
}

const written: AuditEvent[][] = [];
function openLog(o: Partial<FileLogOptions> = {}): Promise<FileAuditLog> {
  return FileAuditLog.open({
    file,
    maxFileBytes: 1 << 30,
    fsync: false,
    digestEveryEvents: 5,
    digestIntervalMs: 60_000,
    maxBacklog: 10_000,
    signer: () => signer,
    hooks: { written: (e) => written.push([...e]), backlog: () => undefined, writeFailed: () => undefined, rotateFailed: () => undefined, digest: () => undefined },
    ...o,
  });
}

async function writeEvents(log: FileAuditLog, from: number, n: number): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => log.append(event(from + i))));
}

const lines = () => readFileSync(file, "utf8").split("\n").slice(0, -1);
const asFile = (ls: string[], name = "audit.jsonl"): LogFile => ({ name, text: ls.map((l) => `${l}\n`).join("") });
const verifyLines = (ls: string[]) => verifyLog([asFile(ls)], spki);
const files = (): LogFile[] => {
  const d = join(dir, "audit");
  const names = readdirSync(d).filter((n) => n.startsWith("audit.jsonl"));
  return inChainOrder(names.map((n) => ({ name: n, text: readFileSync(join(d, n), "utf8") })));
};

/** The digest bodies of a log, in order. */
const digestsOf = (ls: string[]) =>
  ls.map((l) => JSON.parse(l) as { digest?: Record<string, unknown> & { reason: string } }).flatMap((r) => (r.digest ? [r.digest] : []));

/** A closed log of 12 events (digests every 5): start digest, events 1..12 with two digests, shutdown digest. */
async function cleanLog(): Promise<string[]> {
  const log = await openLog();
  for (let i = 0; i < 12; i++) await writeEvents(log, i, 1);
  await log.close();
  return lines();
}

describe("audit log file", () => {
  it("chains every record, signs digests, ends with a shutdown digest; verify finds nothing to say", async () => {
    const ls = await cleanLog();
    const recs = ls.map((l) => JSON.parse(l) as { recordType?: string; auditChain: { seq: number }; digest?: { reason: string } });
    expect(recs.map((r) => r.auditChain.seq)).toEqual(recs.map((_, i) => i));
    expect(recs.filter((r) => r.recordType === "Digest").map((r) => r.digest!.reason)).toEqual(["start", "count", "count", "shutdown"]);
    const report = verifyLines(ls);
    expect(report).toMatchObject({ problems: [], warnings: [], events: 12, digests: 4, lastSignedSeq: ls.length - 1 });
  });

  it("writes the events of one tick in one batch (group commit)", async () => {
    const log = await openLog({ digestEveryEvents: 1000 });
    written.length = 0;
    await writeEvents(log, 0, 200);
    expect(written.map((b) => b.length)).toEqual([200]);
    await log.close();
  });

  it("continues the chain across a restart, and the start digest says the previous run ended cleanly", async () => {
    await cleanLog();
    const log = await openLog();
    await writeEvents(log, 100, 3);
    await log.close();
    const ls = lines();
    expect(verifyLines(ls)).toMatchObject({ problems: [], warnings: [], events: 15 });
    const start = ls.map((l) => JSON.parse(l) as { digest?: { reason: string; previousRunClean?: boolean } }).filter((r) => r.digest?.reason === "start");
    expect(start.map((r) => r.digest!.previousRunClean)).toEqual([true, true]);
  });
});

describe("audit verify detects tampering, at the record where it shows", () => {
  it("an edited event: the record whose hash no longer matches", async () => {
    const ls = await cleanLog();
    ls[4] = ls[4]!.replace('"keyId":"k', '"keyId":"X');
    const { problems } = verifyLines(ls);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ kind: "modified", at: { line: 5, seq: 4 } });
  });

  it("an edited link (prevHash) is reported too", async () => {
    const ls = await cleanLog();
    ls[4] = ls[4]!.replace(/"prevHash":"[0-9a-f]{4}/, '"prevHash":"0000');
    expect(verifyLines(ls).problems[0]).toMatchObject({ kind: "modified", at: { line: 4, seq: 3 } });
  });

  it("a deleted event: the gap, at the record after it", async () => {
    const ls = await cleanLog();
    ls.splice(3, 1); // seq 3
    const { problems } = verifyLines(ls);
    expect(problems[0]).toMatchObject({ kind: "deleted", at: { line: 4, seq: 4 } });
    expect(problems[0]!.message).toContain("seq 3..3 are missing");
  });

  it("an inserted event (a replayed copy): the duplicate sequence number", async () => {
    const ls = await cleanLog();
    ls.splice(6, 0, ls[2]!);
    const { problems } = verifyLines(ls);
    expect(problems[0]).toMatchObject({ kind: "reordered", at: { line: 7, seq: 2 } });
    // ...and the chain goes on after it: one insertion, one problem... plus the broken link after it.
    expect(problems.length).toBeLessThanOrEqual(2);
  });

  it("an inserted event with a new sequence number: the records after it no longer follow", async () => {
    const ls = await cleanLog();
    const forged = JSON.parse(ls[3]!) as { auditChain: { seq: number }; requestID: string };
    forged.requestID = "forged";
    ls.splice(3, 0, JSON.stringify(forged));
    const { problems } = verifyLines(ls);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ kind: "inserted", at: { line: 4, seq: 3 } });
  });

  it("an inserted event after the genuine one with the same sequence number", async () => {
    const ls = await cleanLog();
    const forged = JSON.parse(ls[3]!) as { requestID: string };
    forged.requestID = "forged";
    ls.splice(4, 0, JSON.stringify(forged));
    const { problems } = verifyLines(ls);
    expect(problems).toEqual([expect.objectContaining({ kind: "inserted", at: { file: "audit.jsonl", line: 5, seq: 3 } })]);
  });

  it("two events swapped", async () => {
    const ls = await cleanLog();
    [ls[3], ls[4]] = [ls[4]!, ls[3]!];
    const { problems } = verifyLines(ls);
    expect(problems[0]).toMatchObject({ kind: "reordered", at: { line: 4, seq: 4 } });
  });

  it("a truncated tail: no shutdown digest, and the records after the last digest are reported unsigned", async () => {
    const ls = await cleanLog();
    const cut = ls.slice(0, -2); // the shutdown digest and the last event
    const report = verifyLines(cut);
    expect(report.problems).toEqual([]);
    expect(report.warnings.join("\n")).toMatch(/does not end with a shutdown digest/);
    expect(report.warnings.join("\n")).toMatch(/1 record\(s\) after the last signed digest \(seq 12\)/);
  });

  it("a tail truncated right after a periodic digest: still no shutdown digest", async () => {
    const ls = await cleanLog();
    const lastCount = ls.map((l) => l.includes('"reason":"count"')).lastIndexOf(true);
    const report = verifyLines(ls.slice(0, lastCount + 1));
    expect(report.problems).toEqual([]);
    expect(report.warnings).toEqual([expect.stringMatching(/does not end with a shutdown digest/)]);
  });

  it("a tail truncated while the daemon was down looks like a crash: the next start recovers, recording the unclean end", async () => {
    // Records never signed can be removed without a trace (the recovery digest covers what is left): the
    // window is bounded by how often digests are written (audit.digest), as docs/audit.md says.
    const ls = await cleanLog();
    writeFileSync(file, ls.slice(0, -3).map((l) => `${l}\n`).join(""));
    const log = await openLog();
    await log.close();
    const report = verifyLines(lines());
    expect(report.problems).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(report.recoveries).toHaveLength(1);
    expect(digestsOf(lines()).find((d) => d.reason === "recovery")).toMatchObject({ previousRunClean: false });
  });

  it("a modified or forged digest, and a digest signed by another key", async () => {
    const ls = await cleanLog();
    const i = ls.findIndex((l) => l.includes('"reason":"count"'));
    const bad = [...ls];
    bad[i] = bad[i]!.replace('"eventCount":5', '"eventCount":4');
    expect(verifyLines(bad).problems.map((p) => p.kind)).toContain("bad-signature");
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "der", type: "spki" });
    expect(verifyLog([asFile(ls)], other).problems.map((p) => p.kind)).toContain("unknown-key");
  });

  it("a cut-off last line: at the end of the newest file a warning (a write in progress), in an older file a problem", async () => {
    const ls = await cleanLog();
    const report = verifyLog([{ name: "audit.jsonl", text: ls.join("\n").slice(0, -20) }], spki);
    expect(report.problems).toEqual([]);
    expect(report.warnings.join("\n")).toMatch(/audit\.jsonl:16: the last line is not terminated/);
    expect(report.warnings.join("\n")).toMatch(/does not end with a shutdown digest/);
    const older = verifyLog([{ name: "audit.jsonl.000000000000", text: ls.slice(0, 8).join("\n") }, asFile(ls.slice(8))], spki);
    expect(older.problems.map((p) => p.kind)).toContain("malformed");
  });
});

describe("recovery after an unclean stop", () => {
  /** A run that crashes: 7 events with a digest every 5, so 2 are left unsigned; the log is never closed. */
  async function crashedRun(o: Partial<FileLogOptions> = {}): Promise<void> {
    const log = await openLog(o);
    for (let i = 0; i < 7; i++) await writeEvents(log, i, 1);
  }

  it("checks the unsigned tail and signs a recovery digest over it: verify says VALID, with the recovery listed", async () => {
    await crashedRun();
    const before = lines();
    expect(verifyLines(before).warnings.join("\n")).toMatch(/2 record\(s\) after the last signed digest/);
    const log = await openLog();
    await log.close();
    const ls = lines();
    const recovery = digestsOf(ls).find((d) => d.reason === "recovery")!;
    const lastCount = before.length - 3; // start, 5 events, count digest at seq 6, then seqs 7 and 8
    expect(recovery).toMatchObject({ previousRunClean: false, firstSeq: lastCount + 1, eventCount: 2, recoveredRecords: 2 });
    expect(digestsOf(ls).map((d) => d.reason)).toEqual(["start", "count", "recovery", "shutdown"]);
    const report = verifyLines(ls);
    expect(report).toMatchObject({ problems: [], warnings: [], recoveries: [{ seq: before.length, recoveredFromSeq: lastCount + 1, recoveredRecords: 2 }] });
  });

  it("a torn last line is cut off first, and the recovery digest says so", async () => {
    await crashedRun();
    writeFileSync(file, readFileSync(file, "utf8") + '{"auditChain":{"seq":9,"prev');
    const log = await openLog();
    await log.close();
    expect(digestsOf(lines()).find((d) => d.reason === "recovery")).toMatchObject({ tornBytesRemoved: 28, recoveredRecords: 2 });
    expect(verifyLines(lines())).toMatchObject({ problems: [], warnings: [] });
  });

  it.each([
    // (the first of the two: an edit of the very last record shows only once a later record links to it)
    ["an edited unsigned record", (ls: string[]) => ls.map((l, i) => (i === ls.length - 2 ? l.replace('"eventName":"Encrypt"', '"eventName":"Decrypt"') : l)), "modified"],
    ["a deleted unsigned record", (ls: string[]) => ls.filter((_, i) => i !== ls.length - 2), "deleted"],
    ["a forged last digest", (ls: string[]) => ls.map((l, i) => (i === ls.length - 3 ? l.replace('"eventCount":5', '"eventCount":4') : l)), "bad-signature"],
  ])("never signs over a tail that does not check out: %s", async (_name, tamper, kind) => {
    await crashedRun();
    writeFileSync(file, tamper(lines()).map((l) => `${l}\n`).join(""));
    const checked: { outcome: string; problems?: readonly string[] }[] = [];
    const log = await openLog({
      hooks: { written: () => undefined, backlog: () => undefined, writeFailed: () => undefined, rotateFailed: () => undefined, digest: () => undefined, tailChecked: (i) => void checked.push(i) },
    });
    await log.close();
    expect(checked).toEqual([expect.objectContaining({ outcome: "refused", problems: expect.arrayContaining([expect.stringContaining(kind)]) })]);
    const ds = digestsOf(lines());
    expect(ds.map((d) => d.reason)).not.toContain("recovery");
    expect(ds.find((d) => d.reason === "start" && d.previousRunClean === false)).toMatchObject({ tailProblems: expect.any(Number) });
    expect(verifyLines(lines()).problems.map((p) => p.kind)).toContain(kind);
  });

  it("cannot recover a run that signed nothing: a plain start digest, and verify keeps the warning", async () => {
    await crashedRun({ signer: () => undefined });
    const log = await openLog();
    await log.close();
    expect(digestsOf(lines()).map((d) => d.reason)).toEqual(["start", "shutdown"]);
    expect(verifyLines(lines()).warnings.join("\n")).toMatch(/did not end with a shutdown digest/);
  });

  it("anchors on the rotated file's rotate digest when the crash came right after a rotation", async () => {
    const log = await openLog({ maxFileBytes: 4096, digestEveryEvents: 1000 });
    const rotatedNames = () => readdirSync(join(dir, "audit")).filter((n) => /^audit\.jsonl\.\d{12}$/.test(n));
    let i = 0;
    while (rotatedNames().length === 0) await writeEvents(log, i++, 1);
    if (digestsOf(lines()).length > 0) throw new Error("the live file should hold events only");
    await writeEvents(log, i++, 1); // crash with 1-2 unsigned events in a fresh live file
    const unsigned = lines().length;
    const reopened = await openLog({ maxFileBytes: 4096, digestEveryEvents: 1000 });
    await reopened.close();
    expect(digestsOf(lines()).find((d) => d.reason === "recovery")).toMatchObject({ recoveredRecords: unsigned });
    expect(verifyLog(files(), spki)).toMatchObject({ problems: [], warnings: [] });
  });

  it("reads a tail larger than its read chunk, with characters that straddle chunk boundaries", async () => {
    const wide = (n: number): AuditEvent => ({ ...event(n), userAgent: "é€😀".repeat(300) }) as AuditEvent;
    const log = await openLog({ digestEveryEvents: 1_000_000 });
    for (let n = 0; n < 1200; n += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => log.append(wide(n + k))));
    expect(readFileSync(file).length).toBeGreaterThan(2 << 20);
    const reopened = await openLog({ digestEveryEvents: 1_000_000 });
    await reopened.close();
    expect(digestsOf(lines()).find((d) => d.reason === "recovery")).toMatchObject({ recoveredRecords: 1200 });
    expect(verifyLines(lines())).toMatchObject({ problems: [], warnings: [] });
  });
});

describe("rotation", () => {
  it("rotates by size, each file ending with a signed digest; verify takes the files in chain order", async () => {
    const log = await openLog({ maxFileBytes: 3000 });
    for (let i = 0; i < 30; i++) await writeEvents(log, i, 1);
    await log.close();
    const fs = files();
    expect(fs.length).toBeGreaterThan(3);
    expect(fs.at(-1)!.name).toBe("audit.jsonl");
    for (const f of fs.slice(0, -1)) expect(f.text.trimEnd().split("\n").at(-1)).toContain('"reason":"rotate"');
    expect(verifyLog(fs, spki)).toMatchObject({ problems: [], warnings: [], events: 30 });
    // Given in any order, the CLI sorts them; a missing middle file is a gap.
    expect(verifyLog(inChainOrder([...fs].reverse()), spki).problems).toEqual([]);
    const gap = verifyLog([fs[0]!, ...fs.slice(2)], spki);
    expect(gap.problems[0]).toMatchObject({ kind: "deleted" });
    // Old files removed by retention: the chain starts later, which verify says, without calling it tampering.
    const retained = verifyLog(fs.slice(2), spki);
    expect(retained.problems).toEqual([]);
    expect(retained.warnings[0]).toMatch(/the chain starts at seq \d+/);
  });

  it("resumes from a rotated file with the fallback name (`<file>.<seq>-<time>`) when the live file is empty", async () => {
    // Two rotated files with the same first seq: a rotation found its name taken and used the fallback
    // name. The newest (the fallback one) holds the chain's head.
    const ls = await cleanLog();
    const d = join(dir, "audit");
    const cut = ls.findIndex((l) => l.includes('"reason":"count"')) + 1;
    writeFileSync(join(d, "audit.jsonl.000000000000"), ls.slice(0, cut).map((l) => `${l}\n`).join(""));
    writeFileSync(join(d, "audit.jsonl.000000000000-1764000000000"), ls.slice(cut).map((l) => `${l}\n`).join(""));
    writeFileSync(file, "");
    const log = await openLog();
    await writeEvents(log, 100, 1);
    await log.close();
    const next = JSON.parse(lines()[0]!) as { auditChain: { seq: number } };
    expect(next.auditChain.seq).toBe(ls.length);
    expect(verifyLog(files(), spki)).toMatchObject({ problems: [], warnings: [] });
  });
});

describe("failures (fail closed)", () => {
  it("rejects the appends of a batch it cannot write, and resumes the chain once the file is writable again", async () => {
    const log = await openLog({ maxFileBytes: 1500 });
    await writeEvents(log, 0, 3);
    // The audit directory is replaced by a plain file: the next rotation and every reopen fail.
    renameSync(join(dir, "audit"), join(dir, "moved"));
    writeFileSync(join(dir, "audit"), "");
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => writeEvents(log, 10 + i, 1)));
    expect(results.some((r) => r.status === "rejected")).toBe(true);
    const after = await Promise.allSettled([log.append(event(50))]);
    expect(after[0]!.status).toBe("rejected");
    rmSync(join(dir, "audit"));
    renameSync(join(dir, "moved"), join(dir, "audit"));
    await writeEvents(log, 60, 2);
    await log.close();
    const report = verifyLog(files(), spki);
    expect(report.problems).toEqual([]);
    // Every acknowledged append is in the log.
    const ids = files().flatMap((f) => f.text.trimEnd().split("\n")).map((l) => (JSON.parse(l) as { requestID?: string }).requestID);
    const acked = [0, 1, 2, ...results.flatMap((r, i) => (r.status === "fulfilled" ? [10 + i] : [])), 60, 61].map((i) => `r${i}`);
    for (const id of acked) expect(ids).toContain(id);
  });

  it("refuses appends beyond the backlog bound", async () => {
    const log = await openLog({ maxBacklog: 100 });
    const res = await Promise.allSettled(Array.from({ length: 150 }, (_, i) => log.append(event(i))));
    expect(res.filter((r) => r.status === "rejected")).toHaveLength(50);
    await log.close();
  });

  it("writes nothing for an interval digest it cannot sign (no empty lines, no busy loop)", async () => {
    let available = false;
    const log = await openLog({ digestIntervalMs: 20, digestEveryEvents: 1000, signer: () => (available ? signer : undefined) });
    await writeEvents(log, 0, 2);
    await new Promise((r) => setTimeout(r, 120));
    expect(lines()).toHaveLength(2);
    available = true;
    await vi.waitFor(() => expect(lines().some((l) => l.includes('"reason":"interval"'))).toBe(true));
    await log.close();
    const ls = lines();
    expect(ls.every((l) => l.length > 0)).toBe(true);
    expect(ls.filter((l) => l.includes('"reason":"interval"'))).toHaveLength(1);
    expect(verifyLines(ls)).toMatchObject({ problems: [] });
  });

  it("keeps writing events when the signing key is unavailable, unsigned until it is back", async () => {
    let available = false;
    const log = await openLog({ signer: () => (available ? signer : undefined) });
    await writeEvents(log, 0, 7);
    available = true;
    await writeEvents(log, 7, 5);
    await log.close();
    const report = verifyLines(lines());
    expect(report.problems).toEqual([]);
    expect(report.lastSignedSeq).toBe(lines().length - 1);
  });
});

it("audit dir helper: mkdir of a nested directory works", () => {
  mkdirSync(join(dir, "x", "y"), { recursive: true });
});

describe("RequestAuditor durability", () => {
  const partition = { region: "us-east-1", accountId: "111122223333" };
  const caller = { principal: "anonymous", authMethod: "insecure" as const, requestId: "r" };
  const quiet = { debug: () => undefined, error: () => undefined } as unknown as Logger;

  async function auditorOn(durability: "sync" | "async") {
    const log = await openLog({ maxFileBytes: 1500 });
    const auditor = new RequestAuditor({ partition, clock: { now: () => new Date() }, durability, file: log, hub: new AuditHub(1, () => undefined), log: quiet, failed: () => undefined });
    return { log, auditor };
  }
  const breakDir = () => {
    renameSync(join(dir, "audit"), join(dir, "moved"));
    writeFileSync(join(dir, "audit"), "");
  };

  it("sync: an answer (or an error) is replaced by KMSInternalException when its event cannot be written", async () => {
    const { log, auditor } = await auditorOn("sync");
    await expect(auditor.around({ api: "grpc", caller, operation: "GenerateRandom" }, async () => "ok")).resolves.toBe("ok");
    breakDir();
    const outcomes = [];
    for (let i = 0; i < 8; i++) {
      outcomes.push(await auditor.around({ api: "grpc", caller, operation: "GenerateRandom" }, async () => "ok").catch((e: { code?: string }) => e.code));
    }
    expect(outcomes.at(-1)).toBe("KMSInternalException");
    await expect(
      auditor.around({ api: "grpc", caller, operation: "DescribeKey" }, async () => {
        throw new KmsError("NotFoundException", "no such key");
      }),
    ).rejects.toMatchObject({ code: "KMSInternalException" });
    await log.close();
  });

  it("async: answers do not wait for the event, and still succeed when it cannot be written", async () => {
    const { log, auditor } = await auditorOn("async");
    breakDir();
    for (let i = 0; i < 8; i++) await expect(auditor.around({ api: "grpc", caller, operation: "GenerateRandom" }, async () => i)).resolves.toBe(i);
    await log.close();
  });
});
