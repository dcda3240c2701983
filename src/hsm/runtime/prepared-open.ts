import { Worker } from "node:worker_threads";
import type { ProbedCapabilities } from "../objects/capabilities.js";
import type { TokenObject } from "./key-objects.js";

/** What the worker hands back for one key store: the probe result and every token object (handle, class, label). */
export interface PreparedStore {
  readonly capabilities: ProbedCapabilities;
  readonly objects: readonly TokenObject[];
}

/** One key store to prepare: what {@link Pkcs11KeyStore.open} would use for its token. */
export interface PrepareRequest {
  readonly keyStoreId: string;
  readonly modulePath: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly rsaOaepSha256Fallback?: "auto" | "allow" | "deny" | undefined;
}

/** Messages from prepare-worker.ts. */
export type PrepareMessage =
  | { readonly keyStoreId: string; readonly capabilities: ProbedCapabilities; readonly objects: { handle: Uint8Array; cls: number; label: string }[] }
  | { readonly keyStoreId: string; readonly error: string; readonly code: number | undefined; readonly fatal: boolean };

/** The worker could not open the token (wrong PIN, no such token…): the same error the main thread would get. */
export class PrepareError extends Error {
  constructor(
    message: string,
    /** The PKCS#11 return value, when the failure was one (read by return-values.ts rvOf). */
    readonly code: number | undefined,
  ) {
    super(message);
  }
}

/**
 * Start-up overlap. Opening a large token is slow and synchronous — C_Initialize reads every object file
 * (~0.85 s at 10,000 keys with SoftHSM2), the capability probe makes an RSA key, and the scan reads every
 * object's class and label (~1.1 s) — and pkcs11js has no async form of these calls. So `p11kms serve` starts
 * a worker thread that does them (prepare-worker.ts) while the main thread loads the daemon's modules and
 * its database; the key store is then opened on the main thread with the results.
 *
 * PKCS#11 state is per process, which is what makes this work: the main thread's C_Initialize answers
 * CKR_CRYPTOKI_ALREADY_INITIALIZED (module.ts), its sessions are already logged in (the worker's session
 * is), and the object handles the worker found are valid on every session. The worker keeps its session
 * open until {@link release}, after the main thread opened its own: closing the last session of a slot
 * would log the application out and, in SoftHSM2, forget the handles. The worker never calls C_Finalize.
 *
 * If the worker cannot open the token at all (wrong PIN, no such token), the open fails with its error, as
 * it would have on the main thread; a later failure (probe, scan) only means "not prepared": the store is
 * then opened the ordinary way.
 */
export class StorePreparation {
  private static spawned: StorePreparation | undefined;
  private readonly results = new Map<string, Promise<PreparedStore | undefined | PrepareError>>();
  private readonly settle = new Map<string, (p: PreparedStore | undefined | PrepareError) => void>();
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private released: Promise<void> | undefined;

  private constructor() {
    const settle = this.settle;
    this.worker = new Worker(new URL("./prepare-worker.js", import.meta.url));
    this.worker.unref(); // an idle worker must not keep the process alive (e.g. `p11kms serve --help`)
    this.worker.on("message", (m: PrepareMessage) => {
      const done = settle.get(m.keyStoreId);
      settle.delete(m.keyStoreId);
      if ("error" in m) return done?.(m.fatal ? new PrepareError(m.error, m.code) : undefined);
      // Handles cross the thread boundary as Uint8Array; pkcs11js wants Buffers.
      const objects = m.objects.map((o) => ({ handle: Buffer.from(o.handle.buffer, o.handle.byteOffset, o.handle.byteLength), cls: o.cls, label: o.label }));
      done?.({ capabilities: m.capabilities, objects });
    });
    this.worker.on("message", () => {
      if (settle.size === 0) this.worker.unref();
    });
    this.exited = new Promise((resolve) => {
      const end = () => {
        for (const done of settle.values()) done(undefined);
        settle.clear();
        resolve();
      };
      this.worker.once("exit", end);
      this.worker.once("error", end);
    });
  }

  /**
   * Starts the worker thread, which waits for {@link prepare}: `p11kms serve` calls this first thing, so the
   * thread boots while the configuration loads. Later calls return the same worker.
   */
  static spawn(): StorePreparation {
    StorePreparation.spawned ??= new StorePreparation();
    return StorePreparation.spawned;
  }

  /** Sends the work: the requests' tokens are prepared one after the other, in this order. Call once. */
  prepare(requests: readonly PrepareRequest[]): void {
    for (const r of requests) this.results.set(r.keyStoreId, new Promise((resolve) => this.settle.set(r.keyStoreId, resolve)));
    if (requests.length > 0) this.worker.ref(); // the daemon waits for the results: keep the process alive
    this.worker.postMessage({ requests });
  }

  /**
   * The prepared store, once (a later open — a reconnect — scans afresh); undefined if it was not prepared.
   * Rejects with a {@link PrepareError} when the worker could not open the token (wrong PIN, no such token):
   * opening it again would only repeat the failure, and a failed login counts against the PIN.
   */
  async take(keyStoreId: string): Promise<PreparedStore | undefined> {
    const r = this.results.get(keyStoreId);
    this.results.delete(keyStoreId);
    const result = await r;
    if (result instanceof PrepareError) throw result;
    return result;
  }

  /**
   * Lets the worker close its sessions and exit; resolves when it has (call before C_Finalize). Call only
   * once the main thread has opened its own sessions on the prepared tokens, or given up on them.
   */
  release(): Promise<void> {
    this.released ??= (this.worker.postMessage("release"), this.exited);
    return this.released;
  }
}
