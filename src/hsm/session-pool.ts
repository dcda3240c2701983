import type * as pkcs11js from "pkcs11js";
import { poisonsSession, rvClass, rvOf } from "./return-values.js";

/** Raised to callers once the pool is closed (key store disconnected or FAILED): no session will come. */
export class PoolClosedError extends Error {
  override readonly name = "PoolClosedError";
  constructor() {
    super("session pool is closed");
  }
}

/** What the pool reports about sessions it had to replace (for metrics); must not throw. */
export interface SessionPoolEvents {
  /** A call failed with a session-level return value on one session and was run again on a fresh one. */
  sessionRetried?(rv: number | undefined, recovered: boolean): void;
}

/**
 * Logged-in sessions of one token. A PKCS#11 session runs one operation at a time, so each operation
 * borrows a session for its duration; up to `max` sessions are opened lazily, further callers wait.
 * Login state belongs to the token, not the session: every session opened after C_Login is logged in.
 *
 * A call that fails with a session-level return value (return-values.ts `rvClass`) never ran on the
 * token, so it is run once more on a freshly opened session: a single stale session (closed behind our
 * back) costs the caller nothing. A second failure is the caller's (and the token's) problem.
 */
export class SessionPool {
  private readonly idle: pkcs11js.Handle[] = [];
  private readonly waiters: { resolve: (s: pkcs11js.Handle) => void; reject: (e: unknown) => void }[] = [];
  private readonly drainWaiters: (() => void)[] = [];
  private open = 0;
  private closed = false;

  constructor(
    private readonly mod: pkcs11js.PKCS11,
    private readonly slot: pkcs11js.Handle,
    private readonly flags: number,
    private readonly max: number,
    private readonly events: SessionPoolEvents = {},
  ) {}

  /** Runs `fn` with a session of its own; a session-level failure retires the session. */
  async use<T>(fn: (session: pkcs11js.Handle) => T | Promise<T>): Promise<T> {
    const session = this.idle.pop() ?? (await this.acquireSlow());
    let poisoned = false;
    try {
      return await fn(session);
    } catch (err) {
      const rv = rvOf(err);
      poisoned = poisonsSession(rv);
      if (rvClass(rv) !== "session" || this.closed) throw err;
      return await this.retryAsync(fn, rv);
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
      const rv = rvOf(err);
      poisoned = poisonsSession(rv);
      if (rvClass(rv) !== "session" || this.closed) throw err;
      return { value: this.retrySync(fn, rv) };
    } finally {
      this.release(session, poisoned);
    }
  }

  /** Closes idle sessions and refuses new ones; in-flight operations finish and close theirs on release. */
  close(): void {
    this.closed = true;
    for (const s of this.idle.splice(0)) this.closeOne(s);
    for (const w of this.waiters.splice(0)) w.reject(new PoolClosedError());
    this.notifyDrained();
  }

  /** After {@link close}: resolves once every borrowed session has been returned (and closed). */
  drained(): Promise<void> {
    if (this.closed && this.open === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Whether the token still answers C_GetTokenInfo: after an unexplained failure (CKR_GENERAL_ERROR, say)
   * this tells "the token is broken" from "this one call failed". SoftHSM2, for one, answers a key
   * generation with CKR_GENERAL_ERROR once its token directory is gone, and C_GetTokenInfo fails then too.
   */
  tokenAnswers(): boolean {
    try {
      this.mod.C_GetTokenInfo(this.slot);
      return true;
    } catch {
      return false;
    }
  }

  get size(): { open: number; idle: number } {
    return { open: this.open, idle: this.idle.length };
  }

  /** The second attempt runs on a session opened for it (idle ones may be just as stale), then closed. */
  private retrySync<T>(fn: (session: pkcs11js.Handle) => T, firstRv: number | undefined): T {
    const fresh = this.openOne();
    let poisoned = true;
    try {
      const value = fn(fresh);
      poisoned = false;
      this.events.sessionRetried?.(firstRv, true);
      return value;
    } catch (err) {
      poisoned = poisonsSession(rvOf(err));
      this.events.sessionRetried?.(firstRv, false);
      throw err;
    } finally {
      this.release(fresh, poisoned, false);
    }
  }

  private async retryAsync<T>(fn: (session: pkcs11js.Handle) => T | Promise<T>, firstRv: number | undefined): Promise<T> {
    const fresh = this.openOne();
    let poisoned = true;
    try {
      const value = await fn(fresh);
      poisoned = false;
      this.events.sessionRetried?.(firstRv, true);
      return value;
    } catch (err) {
      poisoned = poisonsSession(rvOf(err));
      this.events.sessionRetried?.(firstRv, false);
      throw err;
    } finally {
      this.release(fresh, poisoned, false);
    }
  }

  private acquireSlow(): Promise<pkcs11js.Handle> {
    if (this.closed) return Promise.reject(new PoolClosedError());
    if (this.open < this.max) return Promise.resolve(this.openOne());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private openOne(): pkcs11js.Handle {
    const s = this.mod.C_OpenSession(this.slot, this.flags);
    this.open++;
    return s;
  }

  /**
   * Returns a session: kept (or handed to a waiter) when healthy, closed when poisoned. A retry session
   * (`serveWaiter` false) goes back like any other when healthy; when poisoned, its original session's
   * release already made room for a waiter.
   */
  private release(session: pkcs11js.Handle, poisoned: boolean, serveWaiter = true): void {
    if (poisoned || this.closed) {
      this.closeOne(session);
      const waiter = this.closed || !serveWaiter ? undefined : this.waiters.shift();
      if (waiter) {
        try {
          waiter.resolve(this.openOne());
        } catch (err) {
          waiter.reject(err);
        }
      }
      this.notifyDrained();
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

  private notifyDrained(): void {
    if (!this.closed || this.open > 0) return;
    for (const resolve of this.drainWaiters.splice(0)) resolve();
  }
}
