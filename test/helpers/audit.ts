import { spawnSync } from "node:child_process";
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { CLI, REPO } from "./daemon.js";

const LIVE = "audit.jsonl";

/**
 * Every record of the audit log in `dir` (rotated files first, in chain order), parsed — a consistent
 * snapshot even while the daemon writes and rotates. `afterOpen` runs between the two steps below (for the
 * test that forces a rotation there).
 *
 * Why the order matters: the daemon rotates (rename `audit.jsonl` to `audit.jsonl.<first seq>`, open a new
 * `audit.jsonl`) right after acknowledging the batch that filled the file. A reader that lists the directory
 * and then reads `audit.jsonl` by name can, if the rotation falls in between, read the new empty file and
 * never see the renamed one: acknowledged events look lost. Opening the live file first and listing after
 * cannot miss anything written before the call: each such record is in the file held open, or in a file
 * rotated before it was opened — which the later listing shows (rotated files are never renamed again).
 */
export function auditRecords(dir: string, afterOpen?: () => void): Record<string, unknown>[] {
  let fd: number | undefined;
  try {
    fd = openSync(join(dir, LIVE), "r");
  } catch (err) {
    // Between a rotation's rename and its reopen there is no live file; all of it is in rotated files.
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  try {
    afterOpen?.();
    const live = fd === undefined ? undefined : fstatSync(fd);
    const rotated = readdirSync(dir)
      .filter((n) => n.startsWith(`${LIVE}.`))
      .sort()
      .map((n) => join(dir, n));
    // The file held open may have been rotated meanwhile: then it is read once, under its rotated name.
    const liveWasRotated = live !== undefined && rotated.some((p) => sameFile(statSync(p), live));
    const texts = rotated.map((p) => readFileSync(p, "utf8"));
    if (fd !== undefined && !liveWasRotated) texts.push(completeLines(readFileSync(fd, "utf8")));
    return texts.flatMap((t) =>
      t
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    );
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The audit events (digest records left out). */
export function auditEvents(dir: string): Record<string, unknown>[] {
  return auditRecords(dir).filter((r) => r.recordType !== "Digest");
}

/**
 * The audit log files of `dir` in chain order: rotated (numbered) files, then the live file. Names only, so
 * for a log that is not being rotated meanwhile (a stopped daemon): to read records, use auditRecords.
 */
export function auditFiles(dir: string): string[] {
  const names = readdirSync(dir).filter((n) => n.startsWith(LIVE));
  const rotated = names.filter((n) => n !== LIVE).sort();
  return [...rotated, ...(names.includes(LIVE) ? [LIVE] : [])].map((n) => join(dir, n));
}

/** Runs `p11kms audit verify` and returns its exit code and parsed report. */
export function verifyCli(files: string[], extra: string[] = []): { status: number | null; report: Record<string, unknown>; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, "audit", "verify", ...extra, ...files], { cwd: REPO, encoding: "utf8" });
  let report: Record<string, unknown> = {};
  try {
    report = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    // left empty: the assertion on status/stderr says what happened
  }
  return { status: r.status, report, stderr: r.stderr };
}

function sameFile(a: { dev: number; ino: number }, b: { dev: number; ino: number }): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/** The text up to its last newline: a line the daemon is still writing is not a record yet (nor acknowledged). */
function completeLines(text: string): string {
  return text.slice(0, text.lastIndexOf("\n") + 1);
}
