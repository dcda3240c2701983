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

/** How the composition root opens a key store (reading its PIN afresh) and explains a failure to open. */
export interface KeyStoreOpener {
  open(keyStoreId: string): Promise<KeyStore>;
  explain(err: unknown): ConnectionFailure;
}

export interface ConnectionLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Connection management of the configured key stores (AWS ConnectCustomKeyStore/DisconnectCustomKeyStore).
 * `live` is the map the service reads: a store is in it exactly while it is CONNECTED, so keys of any other
 * store read Unavailable and are refused with KMSInvalidStateException. Whether a store should be connected
 * is durable: a store disconnected on purpose stays disconnected across restarts.
 *
 * WARNING: disconnecting closes the store's session pool; operations already running on it finish, and a
 * call that fetched the store just before may fail once (internal error) — the price of not blocking.
 */
export class KeyStoreConnections {
  private readonly status = new Map<string, KeyStoreStatus>();

  constructor(
    private readonly ids: readonly string[],
    private readonly live: Map<string, KeyStore>,
    private readonly opener: KeyStoreOpener,
    private readonly metadata: KeyStoreMetadata,
    private readonly clock: Clock,
    private readonly log: ConnectionLog,
  ) {}

  /** Opens every store that should be connected; one that fails is FAILED, with its reason logged. */
  async start(): Promise<void> {
    const known = new Map((await this.metadata.getKeyStores()).map((r) => [r.keyStoreId, r]));
    for (const id of this.ids) {
      let record = known.get(id);
      if (!record) {
        record = { keyStoreId: id, creationDate: this.clock.now(), connect: true };
        await this.metadata.putKeyStore(record);
      }
      this.status.set(id, { keyStoreId: id, connectionState: "DISCONNECTED", creationDate: record.creationDate });
      if (record.connect) await this.tryOpen(id);
      else this.log.info({ keyStoreId: id }, "key store left disconnected (DisconnectCustomKeyStore before the restart)");
    }
  }

  /** ConnectCustomKeyStore: connecting a connected store is a no-op; a FAILED one must be disconnected first. */
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
    await this.tryOpen(keyStoreId);
  }

  /** DisconnectCustomKeyStore: closes the store's sessions; its keys are Unavailable until it is connected. */
  async disconnect(keyStoreId: string): Promise<void> {
    const s = this.get(keyStoreId);
    if (s.connectionState === "DISCONNECTED") {
      throw new KmsError("CustomKeyStoreInvalidStateException", `Key store '${keyStoreId}' is already DISCONNECTED.`);
    }
    await this.metadata.putKeyStore({ keyStoreId, creationDate: s.creationDate, connect: false });
    const store = this.live.get(keyStoreId);
    this.live.delete(keyStoreId);
    this.status.set(keyStoreId, { keyStoreId, connectionState: "DISCONNECTED", creationDate: s.creationDate });
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

  /** Closes every connected store (daemon shutdown). */
  async closeAll(): Promise<void> {
    for (const [id, store] of this.live) {
      this.live.delete(id);
      await store.close().catch(() => undefined);
    }
  }

  private async tryOpen(keyStoreId: string): Promise<void> {
    const creationDate = this.get(keyStoreId).creationDate;
    this.status.set(keyStoreId, { keyStoreId, connectionState: "CONNECTING", creationDate });
    try {
      const store = await this.opener.open(keyStoreId);
      this.live.set(keyStoreId, store);
      this.status.set(keyStoreId, { keyStoreId, connectionState: "CONNECTED", creationDate });
      this.log.info({ keyStoreId }, "key store connected");
    } catch (err) {
      const failure = this.opener.explain(err);
      this.status.set(keyStoreId, { keyStoreId, connectionState: "FAILED", failure, creationDate });
      this.log.error({ keyStoreId, connectionErrorCode: failure.code, reason: failure.reason }, "key store connection FAILED");
    }
  }
}
