import pkcs11js from "pkcs11js";
import { loadModule } from "./module.js";
import { CKR, rvOf } from "./return-values.js";
import { SessionPool, type SessionPoolEvents } from "./session-pool.js";

export interface TokenOptions {
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly maxSessions: number;
  /**
   * How long an async PKCS#11 call (libuv thread pool: RSA, P-384…, key pair generation) may run before it
   * answers KeyUnavailableException and the store goes FAILED; absent means {@link DEFAULT_CALL_TIMEOUT_MS}.
   */
  readonly callTimeoutMs?: number;
  /** Bound on keys with an in-memory session copy (0: none); absent means the default. */
  readonly sessionCopies?: number;
  /** See the key store configuration field of the same name; absent means "auto". */
  readonly rsaOaepSha256Fallback?: "auto" | "allow" | "deny";
  /** See the key store configuration field of the same name; absent means "auto". */
  readonly importOaepSha256Fallback?: "auto" | "allow" | "deny";
  /** Run AES-GCM on the device thread (device-thread.ts); absent means false (the daemon's config defaults to true). */
  readonly deviceThread?: boolean;
  /**
   * Device calls per event-loop turn that still run on the loop while the device thread is idle (default
   * DEFAULT_INLINE_PER_TURN); 0 sends every call to the thread (tests of the thread path use it).
   */
  readonly deviceThreadInlinePerTurn?: number;
}

/** Default of `keyStores[].callTimeoutMs`: far above any healthy call (an RSA-4096 key pair takes seconds). */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/** An open, logged-in token: the module, its slot, and a pool of sessions. */
export interface OpenToken {
  readonly mod: pkcs11js.PKCS11;
  readonly slot: pkcs11js.Handle;
  readonly pool: SessionPool;
}

/**
 * Finds the token by label (slot ids change every time SoftHSM2 initialises a token, labels do not),
 * logs in as the user and returns a session pool. The PIN is used here and not kept.
 */
export function openToken(opts: TokenOptions, events?: SessionPoolEvents): OpenToken {
  const mod = loadModule(opts.modulePath);
  const matches = mod
    .C_GetSlotList(true)
    .filter((slot) => mod.C_GetTokenInfo(slot).label.trim() === opts.tokenLabel);
  if (matches.length !== 1) {
    const labels = mod.C_GetSlotList(true).map((s) => mod.C_GetTokenInfo(s).label.trim());
    throw new Error(
      matches.length === 0
        ? `no token labelled '${opts.tokenLabel}' in ${opts.modulePath} (tokens present: ${labels.join(", ") || "none"})`
        : `${matches.length} tokens are labelled '${opts.tokenLabel}'; labels must be unique`,
    );
  }
  const slot = matches[0]!;
  const pool = new SessionPool(mod, slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION, opts.maxSessions, events, opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS);
  try {
    pool.trySync((session) => {
      try {
        mod.C_Login(session, pkcs11js.CKU_USER, opts.pin);
      } catch (err) {
        if (rvOf(err) !== CKR.USER_ALREADY_LOGGED_IN) throw err;
      }
    });
  } catch (err) {
    pool.close(); // a failed attempt (the background reconnect makes many) must not leave sessions behind
    throw err;
  }
  return { mod, slot, pool };
}
