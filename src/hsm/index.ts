/**
 * The one face of src/hsm: everything code outside this folder may use. The KeyStore port on a PKCS#11
 * token ({@link Pkcs11KeyStore}), the start-up worker that opens tokens while the daemon loads, the
 * explanations of device failures for the key-store connection layer, and the module bookkeeping the daemon
 * needs at exit and for its metrics. What lives in ops/, runtime/ and objects/ is private to src/hsm
 * (tests of those parts import them directly). See docs/architecture.md.
 */
export { DEFAULT_SESSION_COPIES, type KeyStoreObserver, Pkcs11KeyStore, Pkcs11OperationError } from "./pkcs11-key-store.js";
export type { TokenOptions } from "./runtime/token.js";
export { type PrepareRequest, type PreparedStore, StorePreparation } from "./runtime/prepared-open.js";
export { explainConnectionFailure, explainDeviceFault } from "./runtime/connection-failure.js";
export { closeModules } from "./runtime/module.js";
export { rvName } from "./runtime/return-values.js";
export { deviceThreadStats } from "./runtime/device-thread.js";
export { type TokenLockFile, tokenLockFile } from "./runtime/token-identity.js";
