import type * as pkcs11js from "pkcs11js";
import { poisonsSession, rvOf } from "./return-values.js";

/**
 * Logged-in sessions of one token. A PKCS#11 session runs one operation at a time, so each operation
 * borrows a session for its duration; up to `max` sessions are opened lazily, further callers wait.
 * Login state belongs to the token, not the session: every session opened after C_Login is logged in.
 */
export class SessionPool {
  private readonly idle: pkcs11js.Handle[] = [];
  private readonly waiters: { resolve: (s: pkcs11js.Handle) => void; reject: (e: unknown) => void }[] = [];
  private open = 0;
  private closed = false;

  constructor(
    private readonly mod: pkcs11js.PKCS11,
    private readonly slot: pkcs11js.Handle,
    private readonly flags: number,
    private readonly max: number,
  ) {}

  /** Runs `fn` with a session of its own; a session-level failure retires the session. */
  async use<T>(fn: (session: pkcs11js.Handle) => T | Promise<T>): Promise<T> {
    const session = this.idle.pop() ?? (await this.acquireSlow());
    let poisoned = false;
    try {
      return await fn(session);
    } catch (err) {
      poisoned = poisonsSession(rvOf(err));
      throw err;
    } finally {
      this.release(session, poisoned);
    }
  }

  /**
   * The synchronous path for fast operations (AES, RNG) on the event loop: no promise hop when a session
   * is idle. Returns undefined when none is idle, and the caller falls back to {@link use}.
   */
  trySync<T>(fn: (session: pkcs11js.Handle) => T): { value: T } | undefined {
    let session = this.idle.pop();
    if (session === undefined) {
      if (this.open >= this.max || this.closed) return undefined;
      session = this.openOne();
    }
    let poisoned = false;
    try {
      return { value: fn(session) };
    } catch (err) {
      poisoned = poisonsSession(rvOf(err));
      throw err;
    } finally {
      this.release(session, poisoned);
    }
  }

  /** Closes idle sessions and refuses new ones; in-flight operations finish and close theirs on release. */
  close(): void {
    this.closed = true;
    for (const s of this.idle.splice(0)) this.closeOne(s);
  }

  get size(): { open: number; idle: number } {
    return { open: this.open, idle: this.idle.length };
  }

  /** Callers queued for a session (all `max` are busy). */
  get waiting(): number {
    return this.waiters.length;
  }

  private acquireSlow(): Promise<pkcs11js.Handle> {
    if (this.closed) return Promise.reject(new Error("session pool is closed"));
    if (this.open < this.max) return Promise.resolve(this.openOne());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private openOne(): pkcs11js.Handle {
    const s = this.mod.C_OpenSession(this.slot, this.flags);
    this.open++;
    return s;
  }

  private release(session: pkcs11js.Handle, poisoned: boolean): void {
    if (poisoned || this.closed) {
      this.closeOne(session);
      const waiter = this.closed ? undefined : this.waiters.shift();
      if (waiter) {
        try {
          waiter.resolve(this.openOne());
        } catch (err) {
          waiter.reject(err);
        }
      }
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(session);
    else this.idle.push(session);
  }

  private closeOne(session: pkcs11js.Handle): void {
    this.open--;
    try {
      this.mod.C_CloseSession(session);
    } catch {
      // The handle may already be gone (device removed): nothing left to release.
    }
  }
}
