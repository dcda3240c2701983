import type pkcs11js from "pkcs11js";
import { rvName } from "../../src/hsm/return-values.js";

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
