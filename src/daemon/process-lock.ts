import { readFileSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import Database from "better-sqlite3";

/**
 * An exclusive lock held by this process until it exits, which the kernel releases when the process dies
 * (kill -9 included): never a stale lock, no PID file to check for liveness.
 *
 * Node has no flock(); SQLite has the same thing built in. The lock file is an empty SQLite database on
 * which one connection opens `BEGIN EXCLUSIVE` and never ends it: SQLite's fcntl() write lock on the file is
 * held until the connection closes, and it is never closed. Another process's attempt fails at once with
 * SQLITE_BUSY (busy timeout 0). Nothing is ever written (journal_mode MEMORY: not even a journal file), so
 * the file stays empty and there is nothing to corrupt or recover.
 *
 * WARNING: fcntl() locks belong to the process, and closing ANY descriptor of the file in this process
 * releases them (POSIX). SQLite guards its own connections against that (its per-inode table keeps the
 * descriptor of a closed second connection open while a lock is held), but a plain `fs` open + close of a
 * lock file here — reading it, copying it — would silently release the lock. So: nothing in this process
 * opens a lock file except through this module; a second acquisition of a held path in this process is
 * refused here without touching the file; the holder's PID is read from the kernel (/proc/locks), never
 * from the file. test/unit/process-lock.test.ts checks each of these.
 */
export interface ProcessLock {
  /** The lock file, canonical (directory symlinks resolved). */
  readonly file: string;
}

/** Why an acquisition failed: another process holds the lock (its PID when the kernel says), or this one does. */
export interface LockRefusal {
  readonly refused: true;
  readonly file: string;
  /** The holder's PID, from /proc/locks (Linux); undefined when it cannot be told. */
  readonly holderPid: number | undefined;
}

/** The connections holding the locks: referenced for the process's life (a collected connection would close). */
const held = new Map<string, Database.Database>();

/** Takes the lock at `file` (created if missing; its directory must exist), or says who holds it. */
export function acquireProcessLock(file: string): ProcessLock | LockRefusal {
  const path = canonicalPath(file);
  // Refused without opening the file: a second descriptor is harmless through SQLite, but nothing is gained.
  if (held.has(path)) return { refused: true, file: path, holderPid: process.pid };
  let db: Database.Database;
  try {
    db = new Database(path, { timeout: 0 });
  } catch (err) {
    throw new Error(`cannot open the lock file ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    db.pragma("journal_mode = MEMORY"); // no journal file beside the lock (better-sqlite3 refuses OFF)
    db.exec("BEGIN EXCLUSIVE"); // WARNING: never committed: the lock lasts as long as this transaction
  } catch (err) {
    // No lock is held on this file by this process: closing the connection releases nothing of anyone's.
    db.close();
    if ((err as { code?: string }).code === "SQLITE_BUSY") return { refused: true, file: path, holderPid: lockHolderPid(path) };
    throw new Error(`cannot lock ${path}: ${(err as Error).message}`, { cause: err });
  }
  held.set(path, db);
  return { file: path };
}

export function isRefusal(r: ProcessLock | LockRefusal): r is LockRefusal {
  return "refused" in r;
}

/**
 * FOR TESTS ONLY: closes the lock's connection, which releases it. The daemon never calls this: its locks
 * are released by the kernel when the process exits, after the whole shutdown.
 */
export function releaseProcessLock(lock: ProcessLock): void {
  held.get(lock.file)?.close();
  held.delete(lock.file);
}

/** The file with its directory's symlinks resolved (and its own, if it exists), so two spellings are one lock. */
export function canonicalPath(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    try {
      return join(realpathSync(dirname(file)), basename(file));
    } catch {
      return resolve(file);
    }
  }
}

/**
 * The PID of the process holding a POSIX lock on `file`, from /proc/locks (Linux): the kernel's own record,
 * so it cannot be stale. stat() only: opening the file here would release this process's own locks on it.
 */
export function lockHolderPid(file: string): number | undefined {
  try {
    const st = statSync(file);
    const dev = st.dev;
    // Linux's encoding of st_dev (new_encode_dev); /proc/locks prints MAJOR:MINOR:INODE, the first two in hex.
    const major = (dev >> 8) & 0xfff;
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    const id = `${major.toString(16).padStart(2, "0")}:${minor.toString(16).padStart(2, "0")}:${st.ino}`;
    for (const line of readFileSync("/proc/locks", "utf8").split("\n")) {
      // "1: POSIX  ADVISORY  WRITE 12345 fe:00:2229779 1073741824 1073742335" (blocked waiters: "1: -> POSIX ...")
      const f = line.trim().split(/\s+/);
      if (f[1] === "->") continue;
      if (f[1] !== "POSIX" || f[5] !== id) continue;
      const pid = Number(f[4]);
      if (Number.isInteger(pid) && pid > 0) return pid;
    }
  } catch {
    // Not Linux, or no /proc: the PID is only a convenience.
  }
  return undefined;
}
