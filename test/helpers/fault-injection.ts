import type pkcs11js from "pkcs11js";
import { rvName } from "../../src/hsm/runtime/return-values.js";

type Pkcs11Function = Extract<keyof pkcs11js.PKCS11, `C_${string}`>;

export interface InjectedFault {
  /** Calls that have failed because of this injection so far. */
  readonly fired: number;
  /** Puts the real function back (also done automatically after `times` failures). */
  restore(): void;
}

/**
 * Makes the next `times` calls of `fn` on the REAL loaded module fail with `rv`, as a pkcs11js error does
 * (an Error with a numeric `code`), without reaching SoftHSM2; every other call goes to SoftHSM2 untouched.
 * This only injects errors the real module could return — it is not a mock. `loadModule` hands every
 * key store of a process the same module object, so patching it here reaches the daemon's calls.
 */
export function injectFault(mod: pkcs11js.PKCS11, fn: Pkcs11Function, rv: number, times = 1): InjectedFault {
  const target = mod as unknown as Record<string, unknown>;
  const own = Object.getOwnPropertyDescriptor(target, fn);
  const original = target[fn] as (...args: unknown[]) => unknown;
  let fired = 0;
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    if (own) Object.defineProperty(target, fn, own);
    else delete target[fn];
  };
  target[fn] = function (this: unknown, ...args: unknown[]): unknown {
    if (!restored && fired < times) {
      fired++;
      if (fired >= times) restore();
      throw Object.assign(new Error(`${rvName(rv)} (injected by test)`), { code: rv });
    }
    return original.apply(this, args);
  };
  return {
    get fired() {
      return fired;
    },
    restore,
  };
}

export interface SessionLossDuringAsyncCalls {
  /** Async calls that were held at the gate when the sessions were closed (in flight for the daemon). */
  readonly held: number;
  /** C_CloseSession calls the daemon made on a session while an async call was still running on it. */
  readonly closedWhileInUse: number;
  /**
   * Holds new `fn` calls at a gate (they have their session, and their C_*Init done: in flight for the
   * daemon), waits until no call of `fn` is inside the module and at least `minHeld` are held, closes every
   * session of `slot` (C_CloseAllSessions: SoftHSM2 logs the token out), then lets the held calls go on to
   * the real module — which answers them CKR_SESSION_HANDLE_INVALID — except the first `generalErrors`,
   * answered CKR_GENERAL_ERROR as SoftHSM2 does when the close races a worker thread.
   */
  closeAllSessions(minHeld: number, generalErrors?: number): Promise<void>;
  restore(): void;
}

/**
 * Sessions closed behind the daemon's back while async calls (libuv thread pool) are in flight on them.
 *
 * Why the gate: with SoftHSM2 2.6.1, C_CloseAllSessions while a worker thread is *inside* C_Sign frees the
 * session under that thread — the process crashes about every second run (measured with pkcs11js alone, 8
 * concurrent P-384 or RSA signatures, no p11kms code involved) or the call ends in CKR_GENERAL_ERROR. No
 * caller of the module can make that safe, so the test closes the sessions only between a call's C_*Init and
 * its C_*Async (in flight for the daemon, not inside the module), and injects the CKR_GENERAL_ERROR outcome.
 * It also checks the daemon's own side: it never closes a session while an async call runs on it.
 */
export function loseSessionsDuringAsyncCalls(mod: pkcs11js.PKCS11, slot: pkcs11js.Handle, fn: Pkcs11Function): SessionLossDuringAsyncCalls {
  const target = mod as unknown as Record<string, unknown>;
  const own = { fn: Object.getOwnPropertyDescriptor(target, fn), close: Object.getOwnPropertyDescriptor(target, "C_CloseSession") };
  const original = target[fn] as (...args: unknown[]) => Promise<unknown>;
  const originalClose = target.C_CloseSession as (s: pkcs11js.Handle) => void;
  const running = new Map<string, number>(); // session (hex) → async calls inside the module on it
  let inside = 0;
  let gate: Promise<void> | undefined;
  let held = 0;
  let closedWhileInUse = 0;
  let generalErrorsLeft = 0;
  const call = (args: unknown[]): Promise<unknown> => {
    if (generalErrorsLeft > 0) {
      generalErrorsLeft--;
      return Promise.reject(Object.assign(new Error(`${rvName(0x5)} (injected by test)`), { code: 0x5 }));
    }
    const key = (args[0] as Buffer).toString("hex");
    inside++;
    running.set(key, (running.get(key) ?? 0) + 1);
    const done = (): void => {
      inside--;
      const n = running.get(key)! - 1;
      if (n === 0) running.delete(key);
      else running.set(key, n);
    };
    const p = original.apply(mod, args);
    p.then(done, done);
    return p;
  };
  target[fn] = function (...args: unknown[]): Promise<unknown> {
    if (!gate) return call(args);
    held++;
    return gate.then(() => call(args));
  };
  target.C_CloseSession = function (session: pkcs11js.Handle): void {
    if (running.has(session.toString("hex"))) closedWhileInUse++;
    originalClose.call(mod, session);
  };
  const restore = (): void => {
    for (const [name, d] of [[fn, own.fn], ["C_CloseSession", own.close]] as const) {
      if (d) Object.defineProperty(target, name, d);
      else delete target[name];
    }
  };
  return {
    get held() {
      return held;
    },
    get closedWhileInUse() {
      return closedWhileInUse;
    },
    async closeAllSessions(minHeld, generalErrors = 0) {
      let open!: () => void;
      gate = new Promise<void>((resolve) => (open = resolve));
      const start = Date.now();
      while ((inside > 0 || held < minHeld) && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 2));
      if (inside > 0 || held < minHeld) throw new Error(`gate: ${inside} calls still inside, ${held} held`);
      mod.C_CloseAllSessions(slot);
      generalErrorsLeft = generalErrors;
      gate = undefined;
      open();
    },
    restore,
  };
}

export interface StalledCalls {
  /** Calls held so far. */
  readonly stalled: number;
  /** Lets every held call go on to the real module (as a device that answers at last). */
  release(): void;
  restore(): void;
}

/**
 * Makes the next `times` calls of an async function hang: they do not reach the module and their promise
 * does not settle until {@link StalledCalls.release} — a device that stopped answering.
 */
export function stallAsync(mod: pkcs11js.PKCS11, fn: Pkcs11Function, times = 1): StalledCalls {
  const target = mod as unknown as Record<string, unknown>;
  const own = Object.getOwnPropertyDescriptor(target, fn);
  const original = target[fn] as (...args: unknown[]) => Promise<unknown>;
  const held: (() => void)[] = [];
  let stalled = 0;
  const restore = (): void => {
    if (own) Object.defineProperty(target, fn, own);
    else delete target[fn];
  };
  target[fn] = function (...args: unknown[]): Promise<unknown> {
    if (stalled >= times) return original.apply(mod, args);
    stalled++;
    return new Promise<void>((resolve) => held.push(resolve)).then(() => original.apply(mod, args));
  };
  return {
    get stalled() {
      return stalled;
    },
    release: () => {
      for (const go of held.splice(0)) go();
    },
    restore,
  };
}
