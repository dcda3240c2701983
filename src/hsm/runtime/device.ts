import type pkcs11js from "pkcs11js";
import { KmsError } from "../../kms/errors.js";
import { type RvClass, isHandleError, rvClass, rvOf } from "./return-values.js";
import { CallTimeoutError, PoolClosedError, type SessionPool, lostLogin } from "./session-pool.js";

/**
 * Told the duration of every device call (inside its session: waiting for a session is not counted; the
 * pool's waiters gauge shows that). `mechanism` is a short family name ("AES_GCM", "ECDSA") or "-".
 */
export type HsmCallObserver = (operation: string, mechanism: string, seconds: number) => void;

/** Decides, for one operation, which return values are the caller's fault (and which error they are). */
export type Classifier = (rv: number | undefined) => KmsError | undefined;

/**
 * The class a failed call ended in: "data" when the operation's classifier made it the caller's fault;
 * "key" when one key's object handle stopped working while the token is fine (see {@link StaleKeyHandleError}).
 */
export type FailureClass = RvClass | "data" | "key";

/**
 * One key's object handle no longer names an object (CKR_KEY_HANDLE_INVALID / CKR_OBJECT_HANDLE_INVALID)
 * while the session is logged in and the token answers: the object was destroyed (a call racing the key's
 * deletion) or replaced behind the daemon's back. Kept as the cause of the KMSInvalidStateException the
 * call answers, so the key store can look the key's object up again (pkcs11-key-store.ts).
 */
export class StaleKeyHandleError extends Error {
  override readonly name = "StaleKeyHandleError";
  constructor(
    readonly operation: string,
    readonly rv: number | undefined,
    cause: unknown,
  ) {
    super(`PKCS#11 ${operation}: the key's object handle is no longer valid (CK_RV 0x${(rv ?? 0).toString(16)})`, { cause });
  }
}

/** True when `err` is the KmsError a stale key handle produced. */
export function isStaleKeyHandle(err: unknown): boolean {
  return err instanceof KmsError && err.cause instanceof StaleKeyHandleError;
}

/** What a device reports about failed calls (metrics, and the key store's connection state); must not throw. */
export interface DeviceObserver {
  /** Every failed PKCS#11 call, once, after the per-operation classification. */
  error?(op: string, rv: number | undefined, cls: FailureClass): void;
  /**
   * A token-level failure (or a session-level one that a fresh session did not cure): this device can no
   * longer be trusted; the owner takes the key store offline and re-opens it.
   */
  tokenFault?(op: string, rv: number | undefined, cause?: unknown): void;
  /** Every device call's duration (metrics). */
  call?: HsmCallObserver;
}

/**
 * Runs device operations on borrowed sessions and turns PKCS#11 failures into KmsErrors: `classify`
 * decides per operation which return values are the caller's fault; token-level failures report a fault
 * and answer KeyUnavailableException; the rest are internal, with the pkcs11js error kept as the cause
 * for the log. This is the one choke point every operation's failure passes through.
 */
export class Device {
  constructor(
    readonly mod: pkcs11js.PKCS11,
    readonly pool: SessionPool,
    private readonly observer: DeviceObserver = {},
  ) {}

  /**
   * For fast operations (AES, HMAC, RNG, attributes): synchronously when a session is idle — no promise
   * hop, which costs more than the operation itself — otherwise queued for a session.
   */
  async run<T>(op: string, fn: (session: pkcs11js.Handle) => T, classify?: Classifier, mechanism = "-"): Promise<T> {
    const observe = this.observer.call;
    const call = observe
      ? (s: pkcs11js.Handle) => {
          const t0 = performance.now();
          try {
            return fn(s);
          } finally {
            observe(op, mechanism, (performance.now() - t0) / 1000);
          }
        }
      : fn;
    try {
      const sync = this.pool.trySync(call);
      return sync ? sync.value : await this.pool.use(call);
    } catch (err) {
      throw this.failure(op, err, classify);
    }
  }

  /**
   * For slow operations (RSA, ECDSA, key generation): `fn` starts a pkcs11js *Async call, which runs on
   * the libuv thread pool so the event loop stays free. The session stays borrowed until it settles.
   *
   * WARNING: the native side keeps raw pointers to the input and output Buffers; `fn` must keep them
   * referenced until its promise settles (see {@link retain}).
   */
  async runAsync<T>(op: string, fn: (session: pkcs11js.Handle) => Promise<T>, classify?: Classifier, mechanism = "-"): Promise<T> {
    const observe = this.observer.call;
    const call = observe
      ? async (s: pkcs11js.Handle) => {
          const t0 = performance.now();
          try {
            return await fn(s);
          } finally {
            observe(op, mechanism, (performance.now() - t0) / 1000);
          }
        }
      : fn;
    try {
      return await this.pool.use(call);
    } catch (err) {
      throw this.failure(op, err, classify);
    }
  }

  /**
   * For calls that bring their own session (the device thread's, see thread-session.ts): the same
   * timing and failure mapping as the other two, without borrowing from the pool.
   */
  async runDetached<T>(op: string, fn: () => Promise<T>, classify?: Classifier, mechanism = "-"): Promise<T> {
    const observe = this.observer.call;
    const t0 = observe ? performance.now() : 0;
    try {
      return await fn();
    } catch (err) {
      throw this.failure(op, err, classify);
    } finally {
      observe?.(op, mechanism, (performance.now() - t0) / 1000);
    }
  }

  private failure(op: string, err: unknown, classify?: Classifier): KmsError {
    if (err instanceof KmsError) return err;
    if (err instanceof PoolClosedError) {
      // The store was disconnected or went FAILED while this call waited: a clean, retryable refusal.
      return new KmsError("KMSInvalidStateException", "The key store of this key is not connected.", { cause: err });
    }
    if (err instanceof CallTimeoutError) {
      // The device stopped answering: take the store offline (the stuck session is never reused).
      this.observer.error?.(op, undefined, "token");
      this.observer.tokenFault?.(op, undefined, err);
      return new KmsError("KeyUnavailableException", "The key store is not available.", { cause: err });
    }
    const rv = rvOf(err);
    const cause = new Pkcs11OperationError(op, rv, err);
    const mapped = classify?.(rv);
    if (mapped) {
      this.observer.error?.(op, rv, "data");
      return new KmsError(mapped.code, mapped.message, { cause });
    }
    let cls = rvClass(rv);
    // An unexplained failure: if the token itself no longer answers, it is the token's failure.
    if (cls === "other" && rv !== undefined && !this.pool.tokenAnswers()) cls = "token";
    // A handle error with the login gone (the pool checked the session) is the token's failure too.
    if (cls === "other" && isHandleError(rv) && lostLogin(err)) cls = "token";
    if (cls === "other" && isHandleError(rv)) {
      this.observer.error?.(op, rv, "key");
      return new KmsError("KMSInvalidStateException", "The key material of this key is not available in its key store.", {
        cause: new StaleKeyHandleError(op, rv, err),
      });
    }
    this.observer.error?.(op, rv, cls);
    if (cls === "other") return new KmsError("KMSInternalException", "The request failed due to an internal error.", { cause });
    // A session-level value here means the retry on a fresh session failed too: the token is the problem.
    this.observer.tokenFault?.(op, rv);
    return new KmsError("KeyUnavailableException", "The key store is not available.", { cause });
  }
}

/**
 * Keeps Buffers reachable: call it after awaiting a pkcs11js *Async call with the buffers the call was
 * given, so the garbage collector cannot free them while a worker thread still writes into them.
 */
export function retain(...values: unknown[]): void {
  sink.values = values; // a store the optimiser cannot drop, so the values are live up to this call
}
const sink: { values?: unknown } = {};

/** A device failure, described for logs: the operation and the CK_RV in hex. Never sent to clients. */
export class Pkcs11OperationError extends Error {
  override readonly name = "Pkcs11OperationError";
  constructor(
    readonly operation: string,
    readonly rv: number | undefined,
    cause: unknown,
  ) {
    super(`PKCS#11 ${operation} failed${rv === undefined ? "" : ` with CK_RV 0x${rv.toString(16)}`}`, { cause });
  }
}
