import { KmsError } from "./errors.js";
import type { Clock, KeyStore, KeyStoreMetadata } from "./ports.js";

/** AWS ConnectionState values (CONNECTING/DISCONNECTING never last here: connecting is synchronous). */
export type ConnectionState = "CONNECTED" | "CONNECTING" | "DISCONNECTED" | "DISCONNECTING" | "FAILED";

/** Why a connection failed: an AWS ConnectionErrorCode, and a human-readable reason (never a secret). */
export interface ConnectionFailure {
  readonly code: string;
  readonly reason: string;
}

/** One key store as DescribeCustomKeyStores shows it. */
export interface KeyStoreStatus {
  readonly keyStoreId: string;
  readonly connectionState: ConnectionState;
  readonly failure?: ConnectionFailure | undefined;
  readonly creationDate: Date;
}

/**
 * How the composition root opens a key store (reading its PIN afresh) and explains a failure to open.
 * `onFault` is how the opened store reports, later, that its device failed under it (a token-level
 * PKCS#11 error): the store is then taken offline (FAILED) and re-opened in the background.
 */
export interface KeyStoreOpener {
  open(keyStoreId: string, onFault: (failure: ConnectionFailure) => void): Promise<KeyStore>;
  explain(err: unknown): ConnectionFailure;
}

export interface ConnectionLog {
  info(obj: object, msg: string): void;
  warn?(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What the daemon learns from connection management (metrics, health); must not throw. */
export interface ConnectionObserver {
  stateChanged?(status: KeyStoreStatus): void;
  /** A connected store went FAILED because its device failed (once per fault, however many calls saw it). */
  fault?(keyStoreId: string, failure: ConnectionFailure): void;
  reconnectAttempt?(keyStoreId: string, outcome: "connected" | "failed"): void;
}

export interface ConnectionOptions {
  /** Delay before the first background reconnect attempt, doubled after each failure up to `maxMs`. */
  readonly reconnect?: { readonly initialMs: number; readonly maxMs: number };
  /**
   * Repairs a store's records and objects before it (re)joins the live map at run time (ConnectCustomKeyStore,
   * background reconnect). Not run by start(): the daemon reconciles every store once before serving.
   */
  readonly reconcile?: (keyStoreId: string, store: KeyStore) => Promise<void>;
  readonly observer?: ConnectionObserver;
}

/** Failures a retry cannot cure, and that retries could make worse (a wrong PIN tried again locks the user). */
const NOT_RETRIED = new Set(["INVALID_CREDENTIALS", "USER_LOCKED_OUT"]);

/** A store opened by {@link KeyStoreConnections}, with whether it reported a fault before going live. */
interface Opened {
  readonly store: KeyStore;
  readonly faultedEarly: () => ConnectionFailure | undefined;
}

/**
 * Connection management of the configured key stores (AWS ConnectCustomKeyStore/DisconnectCustomKeyStore).
 * `live` is the map the service reads: a store is in it exactly while it is CONNECTED, so keys of any other
 * store read Unavailable and are refused with KMSInvalidStateException. Whether a store should be connected
 * is durable: a store disconnected on purpose stays disconnected across restarts.
 *
 * A connected store whose device fails (token-level PKCS#11 error, see src/hsm/runtime/return-values.ts) goes FAILED
 * at once — out of `live`, so calls are refused quickly instead of piling up on a broken device — and a
 * background loop re-opens it (new sessions, new login, fresh object handles; never C_Finalize) until it
 * is CONNECTED again or an operator disconnects it. Before reopening, the loop waits for the calls still
 * running on the old sessions to finish, so the reopened store sees every object they made.
 *
 * Disconnecting closes the store's session pool: calls waiting for a session are refused with
 * KMSInvalidStateException; calls already running on a session finish.
 */
export class KeyStoreConnections {
  private readonly status = new Map<string, KeyStoreStatus>();
  /** The background reconnect loop of each FAILED store; a loop stops when its entry is no longer its own. */
  private readonly loops = new Map<string, { timer?: NodeJS.Timeout; wake?: () => void }>();
  private readonly reconnect: { initialMs: number; maxMs: number };
  /** Closing (draining) old instances of FAILED stores: shutdown waits for them before the module goes. */
  private readonly draining = new Set<Promise<void>>();

  constructor(
    private readonly ids: readonly string[],
    private readonly live: Map<string, KeyStore>,
    private readonly opener: KeyStoreOpener,
    private readonly metadata: KeyStoreMetadata,
    private readonly clock: Clock,
    private readonly log: ConnectionLog,
    private readonly options: ConnectionOptions = {},
  ) {
    this.reconnect = options.reconnect ?? { initialMs: 100, maxMs: 2000 };
  }

  /**
   * Opens every store that should be connected; one that fails is FAILED, with its reason logged, and joins
   * the background reconnect loop (a token that appears later is served without a restart) — unless the
   * failure is one a retry cannot cure and could make worse (a wrong or locked PIN).
   */
  async start(): Promise<void> {
    const known = new Map((await this.metadata.getKeyStores()).map((r) => [r.keyStoreId, r]));
    for (const id of this.ids) {
      let record = known.get(id);
      if (!record) {
        record = { keyStoreId: id, creationDate: this.clock.now(), connect: true };
        await this.metadata.putKeyStore(record);
      }
      this.setStatus({ keyStoreId: id, connectionState: "DISCONNECTED", creationDate: record.creationDate });
      if (record.connect) await this.tryOpen(id, false, true);
      else this.log.info({ keyStoreId: id }, "key store left disconnected (DisconnectCustomKeyStore before the restart)");
    }
  }

  /**
   * ConnectCustomKeyStore: connecting a connected store is a no-op; a FAILED one must be disconnected first.
   * The store is reconciled (interrupted creations and deletions finished, stray objects quarantined)
   * before its keys become usable.
   */
  async connect(keyStoreId: string): Promise<void> {
    const s = this.get(keyStoreId);
    if (s.connectionState === "CONNECTED") return;
    if (s.connectionState === "FAILED") {
      throw new KmsError(
        "CustomKeyStoreInvalidStateException",
        `Key store '${keyStoreId}' is FAILED; disconnect it (DisconnectCustomKeyStore), then connect it again.`,
      );
    }
    await this.metadata.putKeyStore({ keyStoreId, creationDate: s.creationDate, connect: true });
    await this.tryOpen(keyStoreId, true);
  }

  /** DisconnectCustomKeyStore: closes the store's sessions (and stops reconnecting a FAILED one). */
  async disconnect(keyStoreId: string): Promise<void> {
    const s = this.get(keyStoreId);
    if (s.connectionState === "DISCONNECTED") {
      throw new KmsError("CustomKeyStoreInvalidStateException", `Key store '${keyStoreId}' is already DISCONNECTED.`);
    }
    await this.metadata.putKeyStore({ keyStoreId, creationDate: s.creationDate, connect: false });
    this.stopLoop(keyStoreId);
    const store = this.live.get(keyStoreId);
    this.live.delete(keyStoreId);
    this.setStatus({ keyStoreId, connectionState: "DISCONNECTED", creationDate: s.creationDate });
    await store?.close().catch(() => undefined);
    this.log.info({ keyStoreId }, "key store disconnected");
  }

  /** Every configured store, ordered by id. */
  list(): KeyStoreStatus[] {
    return [...this.status.values()].sort((a, b) => (a.keyStoreId < b.keyStoreId ? -1 : 1));
  }

  /** The status of one store; CustomKeyStoreNotFoundException when no store has that id. */
  get(keyStoreId: string): KeyStoreStatus {
    const s = this.status.get(keyStoreId);
    if (!s) throw new KmsError("CustomKeyStoreNotFoundException", `Key store '${keyStoreId}' does not exist.`);
    return s;
  }

  /** Stops reconnecting and closes every connected store (daemon shutdown). */
  async closeAll(): Promise<void> {
    for (const id of [...this.loops.keys()]) this.stopLoop(id);
    for (const [id, store] of this.live) {
      this.live.delete(id);
      await store.close().catch(() => undefined);
    }
    await Promise.all(this.draining);
  }

  private async tryOpen(keyStoreId: string, reconcile: boolean, retryInBackground = false): Promise<void> {
    const creationDate = this.get(keyStoreId).creationDate;
    this.setStatus({ keyStoreId, connectionState: "CONNECTING", creationDate });
    try {
      const opened = await this.openStore(keyStoreId);
      if (reconcile) await this.reconcileOpened(keyStoreId, opened);
      this.goLive(keyStoreId, opened);
      this.log.info({ keyStoreId }, "key store connected");
    } catch (err) {
      const failure = err instanceof FaultWhileOpening ? err.failure : this.opener.explain(err);
      this.setStatus({ keyStoreId, connectionState: "FAILED", failure, creationDate });
      this.log.error({ keyStoreId, connectionErrorCode: failure.code, reason: failure.reason }, "key store connection FAILED");
      if (retryInBackground && !NOT_RETRIED.has(failure.code)) {
        this.log.info({ keyStoreId }, "key store FAILED at start-up: reconnecting in the background");
        void this.reconnectLoop(keyStoreId);
      }
    }
  }

  /** Whether a FAILED store is being reconnected in the background. */
  reconnecting(keyStoreId: string): boolean {
    return this.loops.has(keyStoreId);
  }

  private async openStore(keyStoreId: string): Promise<Opened> {
    // The store may report a fault before `open` even returns: the holder is filled afterwards.
    const holder: { store?: KeyStore } = {};
    let early: ConnectionFailure | undefined;
    const store = await this.opener.open(keyStoreId, (failure) => {
      if (holder.store && this.live.get(keyStoreId) === holder.store) this.fault(keyStoreId, holder.store, failure);
      else early ??= failure;
    });
    holder.store = store;
    return { store, faultedEarly: () => early };
  }

  private async reconcileOpened(keyStoreId: string, opened: Opened): Promise<void> {
    try {
      await this.options.reconcile?.(keyStoreId, opened.store);
    } catch (err) {
      await opened.store.close().catch(() => undefined);
      throw err;
    }
  }

  /** Puts an opened store in the live map, unless it already failed while being opened or reconciled. */
  private goLive(keyStoreId: string, opened: Opened): void {
    const early = opened.faultedEarly();
    if (early) {
      void opened.store.close().catch(() => undefined);
      throw new FaultWhileOpening(early);
    }
    this.live.set(keyStoreId, opened.store);
    this.setStatus({ keyStoreId, connectionState: "CONNECTED", creationDate: this.get(keyStoreId).creationDate });
  }

  /** A live store's device failed: take it offline now, re-open it in the background. */
  private fault(keyStoreId: string, store: KeyStore, failure: ConnectionFailure): void {
    if (this.live.get(keyStoreId) !== store) return; // already handled (many calls fail at once)
    this.live.delete(keyStoreId);
    const s = this.get(keyStoreId);
    this.setStatus({ keyStoreId, connectionState: "FAILED", failure, creationDate: s.creationDate });
    this.options.observer?.fault?.(keyStoreId, failure);
    this.log.error(
      { keyStoreId, connectionErrorCode: failure.code, reason: failure.reason },
      "key store FAILED (device error): its keys are Unavailable until it is reconnected; reconnecting in the background",
    );
    void this.reconnectLoop(keyStoreId, store);
  }

  /** Re-opens a FAILED store until it is CONNECTED; `old`, the instance that failed (none at start-up). */
  private async reconnectLoop(keyStoreId: string, old?: KeyStore): Promise<void> {
    const loop: { timer?: NodeJS.Timeout; wake?: () => void } = {};
    this.loops.set(keyStoreId, loop);
    const mine = (): boolean => this.loops.get(keyStoreId) === loop;
    // Calls still running on the old sessions finish first, so the reopened store's scan sees their objects.
    if (old) {
      const closing = old.close().catch(() => undefined);
      this.draining.add(closing);
      await closing;
      this.draining.delete(closing);
    }
    let delay = this.reconnect.initialMs;
    for (let attempt = 1; mine(); attempt++) {
      await new Promise<void>((resolve) => {
        loop.wake = resolve;
        loop.timer = setTimeout(resolve, delay);
        loop.timer.unref();
      });
      if (!mine()) return;
      let handedOver = false;
      try {
        const opened = await this.openStore(keyStoreId);
        if (!mine()) {
          await opened.store.close().catch(() => undefined);
          return;
        }
        await this.reconcileOpened(keyStoreId, opened);
        if (!mine()) {
          await opened.store.close().catch(() => undefined);
          return;
        }
        this.loops.delete(keyStoreId);
        handedOver = true;
        this.goLive(keyStoreId, opened);
        this.options.observer?.reconnectAttempt?.(keyStoreId, "connected");
        this.log.info({ keyStoreId, attempt }, "key store reconnected");
        return;
      } catch (err) {
        this.options.observer?.reconnectAttempt?.(keyStoreId, "failed");
        const failure = err instanceof FaultWhileOpening ? err.failure : this.opener.explain(err);
        if (handedOver) this.loops.set(keyStoreId, loop); // goLive refused a store that faulted meanwhile: keep trying
        if (!mine()) return;
        const s = this.get(keyStoreId);
        this.setStatus({ keyStoreId, connectionState: "FAILED", failure, creationDate: s.creationDate });
        if (NOT_RETRIED.has(failure.code)) {
          this.loops.delete(keyStoreId);
          this.log.error(
            { keyStoreId, attempt, connectionErrorCode: failure.code, reason: failure.reason },
            "key store reconnect refused; no more attempts (fix the cause, then DisconnectCustomKeyStore and ConnectCustomKeyStore)",
          );
          return;
        }
        (this.log.warn ?? this.log.error).call(
          this.log,
          { keyStoreId, attempt, connectionErrorCode: failure.code, reason: failure.reason, nextAttemptMs: Math.min(delay * 2, this.reconnect.maxMs) },
          "key store reconnect attempt failed",
        );
        delay = Math.min(delay * 2, this.reconnect.maxMs);
      }
    }
  }

  private stopLoop(keyStoreId: string): void {
    const loop = this.loops.get(keyStoreId);
    if (!loop) return;
    this.loops.delete(keyStoreId);
    clearTimeout(loop.timer);
    loop.wake?.();
  }

  private setStatus(status: KeyStoreStatus): void {
    this.status.set(status.keyStoreId, status);
    try {
      this.options.observer?.stateChanged?.(status);
    } catch {
      // Metrics and health must never break connection management.
    }
  }
}

/** A store reported a device fault while it was being opened or reconciled: it never went live. */
class FaultWhileOpening extends Error {
  constructor(readonly failure: ConnectionFailure) {
    super(failure.reason);
  }
}
