import { type GrpcServer, KMS_SERVICE_NAME } from "../api/grpc/server.js";
import type { KeyStoreStatus } from "../kms/key-store-connections.js";

/** The grpc.health.v1 service name of one key store: this prefix and the store id. */
export const KEY_STORE_HEALTH_PREFIX = "p11kms.v1.KeyStore/";

/** Where the stores' states are read (the daemon's KeyStoreConnections). */
interface StoreStates {
  list(): readonly KeyStoreStatus[];
}

/**
 * grpc.health.v1: each store as "p11kms.v1.KeyStore/<id>" (SERVING while CONNECTED); the server ("") and
 * the KMS service are SERVING while at least one store is CONNECTED. Nothing is SERVING before start-up
 * has finished or once shutdown began.
 */
export class ServingHealth {
  /** Set from the end of start-up until shutdown begins; statuses are written only meanwhile. */
  private live: GrpcServer | undefined;

  /** Start-up has finished: from now on the statuses follow the stores' states. */
  serve(grpc: GrpcServer, stores: StoreStates): void {
    this.live = grpc;
    this.update(stores);
  }

  /** A store's state changed (nothing happens before {@link serve} or after {@link stopServing}). */
  update(stores: StoreStates): void {
    const grpc = this.live;
    if (!grpc) return;
    const all = stores.list();
    for (const s of all) grpc.health.setStatus(`${KEY_STORE_HEALTH_PREFIX}${s.keyStoreId}`, s.connectionState === "CONNECTED" ? "SERVING" : "NOT_SERVING");
    const any = all.some((s) => s.connectionState === "CONNECTED") ? "SERVING" : "NOT_SERVING";
    grpc.health.setStatus("", any);
    grpc.health.setStatus(KMS_SERVICE_NAME, any);
  }

  /** Shutdown began: everything NOT_SERVING, and a later state change no longer makes anything SERVING. */
  stopServing(grpc: GrpcServer, stores: StoreStates): void {
    this.live = undefined;
    grpc.health.setStatus("", "NOT_SERVING");
    grpc.health.setStatus(KMS_SERVICE_NAME, "NOT_SERVING");
    for (const s of stores.list()) grpc.health.setStatus(`${KEY_STORE_HEALTH_PREFIX}${s.keyStoreId}`, "NOT_SERVING");
  }
}
