import type pkcs11js from "pkcs11js";
import { KmsError } from "../kms/errors.js";
import { CKR, rvOf } from "./return-values.js";
import type { SessionPool } from "./session-pool.js";

/**
 * Told the duration of every device call (inside its session: waiting for a session is not counted; the
 * pool's waiters gauge shows that). `mechanism` is a short family name ("AES_GCM", "ECDSA") or "-".
 */
export type HsmCallObserver = (operation: string, mechanism: string, seconds: number) => void;

/** Decides, for one operation, which return values are the caller's fault (and which error they are). */
export type Classifier = (rv: number | undefined) => KmsError | undefined;

/**
 * Runs device operations on borrowed sessions and turns PKCS#11 failures into KmsErrors: `classify`
 * decides per operation which return values are the caller's fault; the rest are internal (or
 * KeyUnavailable for a device gone away), with the pkcs11js error kept as the cause for the log.
 */
export class Device {
  constructor(
    readonly mod: pkcs11js.PKCS11,
    readonly pool: SessionPool,
    private readonly observe?: HsmCallObserver,
  ) {}

  /**
   * For fast operations (AES, HMAC, RNG, attributes): synchronously when a session is idle — no promise
   * hop, which costs more than the operation itself — otherwise queued for a session.
   */
  async run<T>(op: string, fn: (session: pkcs11js.Handle) => T, classify?: Classifier, mechanism = "-"): Promise<T> {
    const observe = this.observe;
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
      throw deviceFailure(op, err, classify);
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
    const observe = this.observe;
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
      throw deviceFailure(op, err, classify);
    }
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

function deviceFailure(op: string, err: unknown, classify?: Classifier): KmsError {
  if (err instanceof KmsError) return err;
  const rv = rvOf(err);
  const cause = new Pkcs11OperationError(op, rv, err);
  const mapped = classify?.(rv);
  if (mapped) return new KmsError(mapped.code, mapped.message, { cause });
  const gone = rv === CKR.DEVICE_ERROR || rv === CKR.DEVICE_REMOVED || rv === CKR.TOKEN_NOT_PRESENT;
  return new KmsError(
    gone ? "KeyUnavailableException" : "KMSInternalException",
    gone ? "The key store is not available." : "The request failed due to an internal error.",
    { cause },
  );
}

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
