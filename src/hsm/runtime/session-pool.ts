import type * as pkcs11js from "pkcs11js";
import { trackAsyncCall } from "./module.js";
import { CKR, isHandleError, poisonsSession, rvClass, rvOf } from "./return-values.js";

/** Raised to callers once the pool is closed (key store disconnected or FAILED): no session will come. */
export class PoolClosedError extends Error {
  override readonly name = "PoolClosedError";
  constructor() {
    super("session pool is closed");
  }
}

/**
 * An async call (libuv thread pool) did not settle within the store's call timeout. Its worker thread cannot
 * be cancelled: the session it holds is abandoned (never reused; closed only if the call ever settles).
 */
export class CallTimeoutError extends Error {
  override readonly name = "CallTimeoutError";
  constructor(readonly timeoutMs: number) {
    super(`the PKCS#11 call did not answer within ${timeoutMs} ms`);
  }
}

/** Marks a pkcs11js error the pool found to have lost its login (the token was logged out under the call). */
const LOGIN_LOST = Symbol("p11kms.loginLost");

/**
 * True when the pool saw that the session of a failed call was no longer logged in (SoftHSM2 logs the
 * token out when its last session closes, and revokes private-object handles then): a handle error with
 * this mark is the token's failure, not one key's.
 */
export function lostLogin(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as Record<symbol, unknown>)[LOGIN_LOST] === true;
}

/** CK_STATE values of a logged-in user session. */
const CKS_RO_USER_FUNCTIONS = 1;
const CKS_RW_USER_FUNCTIONS = 3;

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
  /** Sessions held by async calls that outlived the call timeout: never reused, closed if they ever settle. */
  private abandoned = 0;

  /**
   * @param callTimeoutMs how long an async call (a promise returned by `fn`) may run before it is answered
   *   with {@link CallTimeoutError}; 0 for no limit. Synchronous calls cannot be interrupted.
   */
  constructor(
    private readonly mod: pkcs11js.PKCS11,
    private readonly slot: pkcs11js.Handle,
    private readonly flags: number,
    private readonly max: number,
    private readonly events: SessionPoolEvents = {},
    private readonly callTimeoutMs = 0,
  ) {}

  /**
   * Runs `fn` with a session of its own; a session-level failure retires the session. A session is never
   * closed nor lent again while a call runs on it: it goes back (or is closed) only once `fn` settled.
   */
  async use<T>(fn: (session: pkcs11js.Handle) => T | Promise<T>): Promise<T> {
    const session = this.idle.pop() ?? (await this.acquireSlow());
    let poisoned = false;
    let release = true;
    try {
      return await this.bounded(session, fn(session));
    } catch (err) {
      if (err instanceof CallTimeoutError) {
        release = false; // the worker thread still owns the session
        throw err;
      }
      const rv = rvOf(err);
      const lost = this.lostWith(session, rv, err);
      poisoned = lost || poisonsSession(rv);
      if (!lost || this.closed) throw err;
      return await this.retryAsync(fn, rv);
    } finally {
      if (release) this.release(session, poisoned);
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
      const lost = this.lostWith(session, rv, err);
      poisoned = lost || poisonsSession(rv);
      if (!lost || this.closed) throw err;
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

  get size(): { open: number; idle: number; abandoned: number } {
    return { open: this.open, idle: this.idle.length, abandoned: this.abandoned };
  }

  /** Callers queued for a session (all `max` are busy). */
  get waiting(): number {
    return this.waiters.length;
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
      const rv = rvOf(err);
      poisoned = this.lostWith(fresh, rv, err) || poisonsSession(rv);
      this.events.sessionRetried?.(firstRv, false);
      throw err;
    } finally {
      this.release(fresh, poisoned, false);
    }
  }

  private async retryAsync<T>(fn: (session: pkcs11js.Handle) => T | Promise<T>, firstRv: number | undefined): Promise<T> {
    const fresh = this.openOne();
    let poisoned = true;
    let release = true;
    try {
      const value = await this.bounded(fresh, fn(fresh));
      poisoned = false;
      this.events.sessionRetried?.(firstRv, true);
      return value;
    } catch (err) {
      if (err instanceof CallTimeoutError) release = false;
      else {
        const rv = rvOf(err);
        poisoned = this.lostWith(fresh, rv, err) || poisonsSession(rv);
      }
      this.events.sessionRetried?.(firstRv, false);
      throw err;
    } finally {
      if (release) this.release(fresh, poisoned, false);
    }
  }

  private lostWith(session: pkcs11js.Handle, rv: number | undefined, err: unknown): boolean {
    return sessionLostWith(this.mod, session, rv, err);
  }

  /**
   * Answers an async call's promise, or {@link CallTimeoutError} once the call timeout passed. A timed-out
   * call's session is abandoned: it no longer counts as open (so closing the pool does not wait for it),
   * is never lent again, and is closed if the call settles after all.
   */
  private bounded<T>(session: pkcs11js.Handle, result: T | Promise<T>): T | Promise<T> {
    if (!(result instanceof Promise)) return result;
    trackAsyncCall(this.mod, result);
    if (this.callTimeoutMs <= 0) return result;
    return new Promise<T>((resolve, reject) => {
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        this.abandoned++;
        this.open--;
        this.notifyDrained();
        reject(new CallTimeoutError(this.callTimeoutMs));
      }, this.callTimeoutMs);
      const settled = (): void => {
        if (!timedOut) return clearTimeout(timer);
        this.abandoned--;
        try {
          this.mod.C_CloseSession(session);
        } catch {
          // Gone with the device already.
        }
      };
      result.then(
        (v) => {
          settled();
          resolve(v);
        },
        (e: unknown) => {
          settled();
          reject(e);
        },
      );
    });
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

/**
 * Whether a failure means the session itself was lost, so the call never ran and may run again on a
 * fresh one: a session-level return value, or an unexplained CKR_GENERAL_ERROR / CKR_FUNCTION_FAILED while
 * the session turns out to be gone. That coincidence is what an async call in flight sees when its session
 * is closed under it (measured with SoftHSM2 2.6.1: C_CloseAllSessions during P-384 and RSA signatures
 * ends some in CKR_GENERAL_ERROR), and it is a session loss, not an internal error.
 *
 * A handle error (CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID) on a session that is no longer
 * logged in is marked ({@link lostLogin}): the token logged out, which revoked the handle.
 */
export function sessionLostWith(mod: pkcs11js.PKCS11, session: pkcs11js.Handle, rv: number | undefined, err: unknown): boolean {
  if (rvClass(rv) === "session") return true;
  if (rv === CKR.GENERAL_ERROR || rv === CKR.FUNCTION_FAILED) return sessionState(mod, session) === "gone";
  if (isHandleError(rv)) {
    const state = sessionState(mod, session);
    if (state === "gone") return true;
    if (state === "public" && typeof err === "object" && err !== null) (err as Record<symbol, unknown>)[LOGIN_LOST] = true;
  }
  return false;
}

/** One C_GetSessionInfo: is the session still there, and logged in? */
function sessionState(mod: pkcs11js.PKCS11, session: pkcs11js.Handle): "user" | "public" | "gone" | "unknown" {
  try {
    const { state } = mod.C_GetSessionInfo(session);
    return state === CKS_RO_USER_FUNCTIONS || state === CKS_RW_USER_FUNCTIONS ? "user" : "public";
  } catch (err) {
    return rvClass(rvOf(err)) === "session" ? "gone" : "unknown";
  }
}
