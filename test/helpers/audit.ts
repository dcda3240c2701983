import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, REPO } from "./daemon.js";

/** Every line of the audit files in `dir` (rotated ones first, in chain order), parsed. */
export function auditRecords(dir: string): Record<string, unknown>[] {
  return auditFiles(dir).flatMap((f) =>
    readFileSync(f, "utf8")
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>),
  );
}

/** The audit events (digest records left out). */
export function auditEvents(dir: string): Record<string, unknown>[] {
  return auditRecords(dir).filter((r) => r.recordType !== "Digest");
}

/** The audit log files of `dir` in chain order: rotated (numbered) files, then the live file. */
export function auditFiles(dir: string): string[] {
  const names = readdirSync(dir).filter((n) => n.startsWith("audit.jsonl"));
  const rotated = names.filter((n) => n !== "audit.jsonl").sort();
  return [...rotated, ...(names.includes("audit.jsonl") ? ["audit.jsonl"] : [])].map((n) => join(dir, n));
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
