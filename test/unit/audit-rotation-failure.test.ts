import { generateKeyPairSync, sign } from "node:crypto";
import type * as FsPromises from "node:fs/promises";
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type AuditEvent, buildEvent } from "../../src/audit/event.js";
import { FileAuditLog } from "../../src/audit/file-log.js";
import type { AuditSigner } from "../../src/audit/signer.js";
import { inChainOrder, verifyLog } from "../../src/audit/verify.js";

// A rotation is close → rename → open. To break the directory at an exact step of it (not at whatever
// moment a timer happens to hit), rename is wrapped: a test can run something just before or just after it.
const at = vi.hoisted(() => ({ beforeRename: undefined as (() => void) | undefined, afterRename: undefined as (() => void) | undefined }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const fs = await importOriginal<typeof FsPromises>();
  return {
    ...fs,
    rename: async (from: string, to: string) => {
      const before = at.beforeRename;
      at.beforeRename = undefined;
      before?.();
      await fs.rename(from, to);
      const after = at.afterRename;
      at.afterRename = undefined;
      after?.();
    },
  };
});

const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
const spki = pair.publicKey.export({ format: "der", type: "spki" });
const signer: AuditSigner = {
  publicKey: async () => spki,
  sign: async (data) => sign("sha256", data, { key: pair.privateKey, dsaEncoding: "ieee-p1363" }),
};

const MAX_FILE_BYTES = 1500;

let root: string;
let auditDir: string;
let failures: unknown[];
let rotationFailures: unknown[];
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "p11kms-audit-rot-"));
  auditDir = join(root, "audit");
  failures = [];
  rotationFailures = [];
});
afterEach(() => {
  at.beforeRename = undefined;
  at.afterRename = undefined;
  rmSync(root, { recursive: true, force: true });
});

function event(i: number): AuditEvent {
  return buildEvent({ region: "us-east-1", accountId: "111122223333" }, "grpc", { principal: "anonymous", authMethod: "insecure", requestId: `r${i}` }, "Encrypt", { keys: [], versions: new Map(), request: { keyId: `k${i}` } }, {}, new Date());
}

function openLog(): Promise<FileAuditLog> {
  return FileAuditLog.open({
    file: join(auditDir, "audit.jsonl"),
    maxFileBytes: MAX_FILE_BYTES,
    fsync: false,
    digestEveryEvents: 1000,
    digestIntervalMs: 60_000,
    maxBacklog: 1000,
    signer: () => signer,
    hooks: { written: () => undefined, backlog: () => undefined, writeFailed: (err) => failures.push(err), rotateFailed: (err) => rotationFailures.push(err), digest: () => undefined },
  });
}

// What the e2e test does: the audit directory is replaced by a plain file, later put back.
const breakDir = () => {
  renameSync(auditDir, join(root, "moved"));
  writeFileSync(auditDir, "");
};
const restoreDir = () => {
  rmSync(auditDir);
  renameSync(join(root, "moved"), auditDir);
};

/** Appends events one at a time (as the e2e client does) until one fills the file; returns once its rotation was tried. */
async function untilRotation(log: FileAuditLog, acked: string[], tried: () => boolean): Promise<void> {
  for (let i = 0; ; i++) {
    await log.append(event(i));
    acked.push(`r${i}`);
    // Synchronous after the check: the directory cannot have been broken in between.
    if (tried() || statSync(join(auditDir, "audit.jsonl")).size >= MAX_FILE_BYTES) break;
  }
  // The batch that filled the file is acknowledged first; its rotation runs right after.
  await vi.waitFor(() => expect(tried()).toBe(true), { timeout: 10_000 });
}

function logFiles() {
  const names = readdirSync(auditDir).filter((n) => n.startsWith("audit.jsonl"));
  return inChainOrder(names.map((name) => ({ name, text: readFileSync(join(auditDir, name), "utf8") })));
}

function requestIds(files: { text: string }[]): string[] {
  return files.flatMap((f) => f.text.trimEnd().split("\n")).flatMap((l) => {
    const id = (JSON.parse(l) as { requestID?: string }).requestID;
    return id ? [id] : [];
  });
}

/**
 * Appends until a rotation, breaking the directory just before or just after its rename; checks that this is
 * reported as a rotation failure (not a write failure), that the next event then fails (fail closed), and that
 * once the directory is back an event is written again. Returns the acknowledged request ids; the log is closed.
 */
async function breakRotationThenRecover(step: "beforeRename" | "afterRename"): Promise<string[]> {
  const log = await openLog();
  let tried = false;
  at[step] = () => {
    tried = true;
    breakDir();
  };
  const acked: string[] = [];
  await untilRotation(log, acked, () => tried);
  // Reported as a rotation failure, not a write failure: every event so far is written and answered.
  await vi.waitFor(() => expect(rotationFailures).toHaveLength(1));
  expect(failures).toEqual([]);
  await expect(log.append(event(100))).rejects.toThrow(); // every reopen fails now: fail closed
  expect(failures.length).toBeGreaterThan(0);
  restoreDir();
  await log.append(event(200));
  acked.push("r200");
  await log.close();
  return acked;
}

describe("a rotation that fails half-way", () => {
  it("fails at the rename (directory gone): the file keeps every acknowledged event and is rotated once it is back", async () => {
    const acked = await breakRotationThenRecover("beforeRename"); // reopens the unrenamed file, continues its chain, rotates it

    const files = logFiles();
    expect(files.map((f) => f.name)).toEqual(["audit.jsonl.000000000000", "audit.jsonl"]);
    // The first rotate digest is followed by the records written after the directory came back.
    const reasons = files[0]!.text.match(/"reason":"rotate"/g);
    expect(reasons).toHaveLength(2);
    expect(requestIds(files)).toEqual(acked);
    expect(verifyLog(files, spki)).toMatchObject({ problems: [], warnings: [] });
  });

  it("fails at the reopen (directory gone right after the rename): the chain goes on from the rotated file", async () => {
    const acked = await breakRotationThenRecover("afterRename"); // a new live file, chained to the rotated file's rotate digest

    const files = logFiles();
    expect(files.map((f) => f.name)).toEqual(["audit.jsonl.000000000000", "audit.jsonl"]);
    expect(files[0]!.text.trimEnd().split("\n").at(-1)).toContain('"reason":"rotate"');
    expect(requestIds(files)).toEqual(acked);
    expect(verifyLog(files, spki)).toMatchObject({ problems: [], warnings: [] });
  });
});
