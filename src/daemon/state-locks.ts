import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Config } from "../config/schema.js";
import { parsePkcs11Uri } from "../config/pkcs11-uri.js";
import { tokenLockFile } from "../hsm/index.js";
import type { Logger } from "../observability/logger.js";
import { acquireProcessLock, canonicalPath, isRefusal, type ProcessLock } from "./process-lock.js";

/** One piece of state a daemon owns alone, and the file whose lock stands for it. */
export interface StateLockTarget {
  /** For the refusal: "the metadata database /var/lib/p11kms/p11kms.db". */
  readonly state: string;
  readonly lockFile: string;
}

/** A second daemon on the same state: the one-line reason the refused daemon exits with. */
export class StateLockedError extends Error {
  override readonly name = "StateLockedError";
  constructor(
    readonly target: StateLockTarget,
    readonly holderPid: number | undefined,
  ) {
    const who = holderPid === undefined ? "another p11kms process" : holderPid === process.pid ? "this process already" : `another p11kms process (pid ${holderPid})`;
    super(`${target.state} is in use: ${who} holds its lock ${target.lockFile}; one daemon per state (docs/operations.md "One daemon per state")`);
  }
}

/**
 * One daemon per state (docs/operations.md "One daemon per state"): takes an exclusive lock on each piece of
 * state the daemon writes — the metadata database, the audit directory, each key store's token — held until
 * the process exits, released by the kernel (process-lock.ts). Throws {@link StateLockedError} at the first
 * one another process holds; the locks already taken are left to the exit (this process is about to end).
 *
 * WARNING: called by serve() before anything writes and before the start-up worker touches a token: before
 * the metadata store opens (it migrates), before the audit log opens, before reconciliation (which
 * quarantines token objects no record owns: two daemons on one token with different databases would
 * destroy each other's keys), and before the worker logs in. The lock files are the only thing a refused
 * daemon may create, and only for state nobody holds.
 */
export function holdStateLocks(config: Config, log: Logger, env: NodeJS.ProcessEnv): ProcessLock[] {
  const locks: ProcessLock[] = [];
  for (const target of stateLockTargets(config, log, env)) {
    const r = acquireProcessLock(target.lockFile);
    if (isRefusal(r)) throw new StateLockedError(target, r.holderPid);
    locks.push(r);
  }
  log.info({ lockFiles: locks.map((l) => l.file) }, "state locks held");
  return locks;
}

/** What is locked, in the order it is locked; two key stores on one token share its lock. */
export function stateLockTargets(config: Config, log: Logger, env: NodeJS.ProcessEnv): StateLockTarget[] {
  const targets: StateLockTarget[] = [];
  const sqlite = config.storage.sqlitePath;
  // ":memory:" (and "" — a temporary database) is private to the process: nothing to share.
  if (sqlite !== ":memory:" && sqlite !== "") {
    const db = canonicalPath(sqlite);
    targets.push({ state: `the metadata database ${db}`, lockFile: `${db}.lock` });
  }
  if (config.audit.enabled) {
    // The directory, not the file: rotated files, digests and the public key all live in it. Created as
    // the audit log would create it (if it does not exist, nobody holds it).
    mkdirSync(dirname(config.audit.file), { recursive: true, mode: 0o750 });
    const dir = canonicalPath(dirname(config.audit.file));
    targets.push({ state: `the audit directory ${dir}`, lockFile: join(dir, ".p11kms.lock") });
  }
  // WARNING: the token lock. Several replicas sharing one token over a shared (PostgreSQL) metadata store
  // will have to skip exactly this loop — and only then: with separate stores, reconciliation on one
  // daemon quarantines the other's keys.
  for (const ks of config.keyStores) {
    let uri;
    try {
      uri = parsePkcs11Uri(ks.uri);
    } catch {
      continue; // reported when the store is opened (which then fails: nothing touches the token)
    }
    const token = tokenLockFile(uri.modulePath, uri.token, env);
    if ("unlocked" in token) {
      log.warn({ keyStoreId: ks.id, token: uri.token, reason: token.unlocked }, "key store token not locked: no file identifies it (one daemon per token is up to you)");
      continue;
    }
    if (targets.some((t) => t.lockFile === token.file)) continue;
    targets.push({ state: `the token '${uri.token}' of key store '${ks.id}' (module ${uri.modulePath})`, lockFile: token.file });
  }
  return targets;
}
