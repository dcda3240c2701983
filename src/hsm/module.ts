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

/** Finalises every module; call only when no operation can be in flight. */
export function closeModules(): void {
  for (const [path, mod] of loaded) {
    try {
      mod.C_Finalize();
    } catch {
      // Finalising at exit is best effort.
    }
    loaded.delete(path);
  }
}
