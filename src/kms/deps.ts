import { KmsError } from "./errors.js";
import type { Partition } from "./key-ids.js";
import type { Clock, KeyStore, MetadataStore } from "./ports.js";
import type { KeyRecord } from "./types.js";

/** What every operation needs: the ports, plus the partition ARNs are minted in. */
export interface ServiceDeps {
  readonly metadata: MetadataStore;
  readonly keyStores: ReadonlyMap<string, KeyStore>;
  /** The store new keys go to when the request names none. */
  readonly defaultKeyStoreId: string;
  readonly clock: Clock;
  readonly partition: Partition;
}

/** Loads a visible key (a key still being created does not exist yet for clients). */
export async function loadKey(deps: ServiceDeps, keyId: string): Promise<KeyRecord> {
  const key = await deps.metadata.getKey(keyId);
  if (!key || key.keyState === "Creating") throw new KmsError("NotFoundException", `Key '${keyId}' does not exist.`);
  return key;
}

export function storeOf(deps: ServiceDeps, key: KeyRecord): KeyStore {
  const store = deps.keyStores.get(key.keyStoreId);
  if (!store) {
    throw new KmsError("KMSInvalidStateException", `The key store of key ${key.keyId} is not configured.`);
  }
  return store;
}
