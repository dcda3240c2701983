import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import Database from "better-sqlite3";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { acquireProcessLock, isRefusal, type LockRefusal, type ProcessLock, releaseProcessLock } from "../../src/daemon/process-lock.js";

const REPO = resolve(import.meta.dirname, "../..");
const VITE_NODE = join(REPO, "node_modules/.bin/vite-node");
const CHILD = join(REPO, "test/helpers/lock-child.ts");
const dir = mkdtempSync(join(tmpdir(), "p11kms-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const freshFile = () => join(dir, `state-${++n}.lock`);

/** Another process tries the lock and exits: what did it get? */
function tryInChild(file: string): Promise<{ acquired: boolean; holderPid?: number | null }> {
  return new Promise((res, rej) =>
    execFile(VITE_NODE, [CHILD, file], { cwd: REPO, timeout: 20_000 }, (err, stdout, stderr) =>
      err ? rej(new Error(`${err.message}: ${stderr}`)) : res(JSON.parse(stdout.trim().split("\n").pop()!) as { acquired: boolean }),
    ),
  );
}

const holders = new Set<ChildProcess>();
afterEach(async () => {
  for (const h of holders) await killed(h);
});

/** Another process takes the lock and keeps it until killed (at the latest after the test). */
async function holdInChild(file: string): Promise<ChildProcess> {
  const child = spawn(VITE_NODE, [CHILD, file, "hold"], { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
  holders.add(child);
  const line = await new Promise<string>((res) => createInterface({ input: child.stdout! }).once("line", res));
  expect(JSON.parse(line)).toEqual({ acquired: true });
  return child;
}

/** SIGKILL, then wait for the exit. */
async function killed(child: ChildProcess): Promise<void> {
  holders.delete(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((res) => child.once("exit", res));
  child.kill("SIGKILL");
  await exited;
}

function acquired(r: ProcessLock | LockRefusal): ProcessLock {
  if (isRefusal(r)) throw new Error(`expected to acquire ${r.file}, held by ${r.holderPid}`);
  return r;
}

describe("acquireProcessLock (an fcntl lock through SQLite, held for the process's life)", () => {
  it("another process is refused while it is held, with this process's PID; released, the other gets it", async () => {
    const file = freshFile();
    const lock = acquired(acquireProcessLock(file));
    const other = await tryInChild(file);
    expect(other.acquired).toBe(false);
    if (process.platform === "linux") expect(other.holderPid).toBe(process.pid); // from /proc/locks
    releaseProcessLock(lock);
    expect(await tryInChild(file)).toEqual({ acquired: true });
  });

  it("this process is refused while another holds it, and told the holder's PID; the holder killed with SIGKILL, it is free at once", async () => {
    const file = freshFile();
    const holder = await holdInChild(file);
    const r = acquireProcessLock(file);
    expect(isRefusal(r)).toBe(true);
    if (process.platform === "linux") expect((r as LockRefusal).holderPid).toBe(holder.pid);
    await killed(holder);
    const lock = acquired(acquireProcessLock(file)); // no stale lock, no waiting
    releaseProcessLock(lock);
  });

  it("a second acquisition in the same process is refused and leaves the first held", async () => {
    const file = freshFile();
    const lock = acquired(acquireProcessLock(file));
    try {
      expect(acquireProcessLock(file)).toEqual({ refused: true, file: lock.file, holderPid: process.pid });
      // The same file spelled through a symlinked directory is the same lock.
      const link = join(dir, `link-${n}`);
      symlinkSync(dir, link);
      expect(isRefusal(acquireProcessLock(join(link, `state-${n}.lock`)))).toBe(true);
      expect((await tryInChild(file)).acquired).toBe(false);
    } finally {
      releaseProcessLock(lock);
    }
  });

  it("another SQLite connection to the lock file in this process, opened and closed, does not release it", async () => {
    const file = freshFile();
    const lock = acquired(acquireProcessLock(file));
    try {
      const db = new Database(file, { timeout: 0 });
      expect(() => db.exec("BEGIN EXCLUSIVE")).toThrow(/locked|busy/i);
      db.close(); // POSIX would drop this process's locks on the file; SQLite keeps the descriptor open
      expect((await tryInChild(file)).acquired).toBe(false);
    } finally {
      releaseProcessLock(lock);
    }
  });

  it("the POSIX pitfall designed around is real: an fs open + close of the lock file in this process releases it", async () => {
    // Why process-lock.ts never opens a lock file outside SQLite and reads the holder from /proc/locks.
    // On a system with open-file-description locks for SQLite this would differ; then the warning is moot.
    const file = freshFile();
    const lock = acquired(acquireProcessLock(file));
    expect((await tryInChild(file)).acquired).toBe(false);
    readFileSync(file);
    expect((await tryInChild(file)).acquired).toBe(true);
    releaseProcessLock(lock);
  });

  it("writes nothing: the lock file stays empty and no journal appears beside it, held or after a SIGKILLed holder", async () => {
    const file = freshFile();
    const holder = await holdInChild(file);
    expect([statSync(file).size, existsSync(`${file}-journal`)]).toEqual([0, false]);
    await killed(holder);
    const lock = acquired(acquireProcessLock(file));
    expect([statSync(file).size, existsSync(`${file}-journal`)]).toEqual([0, false]);
    releaseProcessLock(lock);
  });

  it("a lock file that cannot be opened is an error, not a refusal", () => {
    expect(() => acquireProcessLock(join(dir, "no-such-dir", "x.lock"))).toThrow(/cannot open the lock file .*no-such-dir/);
  });
});
