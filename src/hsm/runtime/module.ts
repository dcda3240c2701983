import pkcs11js from "pkcs11js";
import { CKR, rvOf } from "./return-values.js";

/**
 * One loaded PKCS#11 library per path, initialised once per process.
 *
 * WARNING: C_Initialize must get CKF_OS_LOCKING_OK — without it SoftHSM2 does no locking and concurrent
 * async calls corrupt its heap. C_Finalize is called only at process exit (closeModules), never while
 * another thread may be inside the module.
 */
const loaded = new Map<string, pkcs11js.PKCS11>();

/** Async calls (libuv worker threads) started on each module and not yet settled, timed-out ones included. */
const inside = new WeakMap<pkcs11js.PKCS11, number>();

/** Counts an async call into `mod` until `call` settles (see {@link closeModules}). */
export function trackAsyncCall(mod: pkcs11js.PKCS11, call: Promise<unknown>): void {
  inside.set(mod, (inside.get(mod) ?? 0) + 1);
  const done = (): void => void inside.set(mod, (inside.get(mod) ?? 1) - 1);
  call.then(done, done);
}

/** Other threads that may be inside a module (the device thread, see device-thread.ts), by module path. */
const otherThreads = new Map<string, (() => boolean)[]>();

/** Registers a check of whether some thread is inside the module at `path` right now (see {@link closeModules}). */
export function registerModuleUser(path: string, inside: () => boolean): void {
  otherThreads.set(path, [...(otherThreads.get(path) ?? []), inside]);
}

export function loadModule(path: string): pkcs11js.PKCS11 {
  let mod = loaded.get(path);
  if (mod) return mod;
  mod = new pkcs11js.PKCS11();
  mod.load(path);
  try {
    mod.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (err) {
    // Another part of the process (e.g. a worker thread) initialised it first: sessions are shared anyway.
    if (rvOf(err) !== CKR.CRYPTOKI_ALREADY_INITIALIZED) throw err;
  }
  loaded.set(path, mod);
  return mod;
}

/**
 * Finalises every module; call only when no operation can be in flight. A module with an async call still
 * running (one that outlived its call timeout, or the shutdown drain), or a device thread inside it, is
 * left as it is: C_Finalize under another thread crashes SoftHSM2, and the process is about to exit anyway.
 * Returns the paths left.
 */
export function closeModules(): string[] {
  const left: string[] = [];
  for (const [path, mod] of loaded) {
    loaded.delete(path);
    if ((inside.get(mod) ?? 0) > 0 || (otherThreads.get(path) ?? []).some((busy) => busy())) {
      left.push(path);
      continue;
    }
    try {
      mod.C_Finalize();
    } catch {
      // Finalising at exit is best effort.
    }
  }
  return left;
}
