import { type ServiceDeps, authorizeAccount } from "./deps.js";
import { KmsError, validation } from "./errors.js";
import type { KeyStoreConnections, KeyStoreStatus } from "./key-store-connections.js";
import type { KeyStore } from "./ports.js";
import { decodeMarker, page } from "./markers.js";
import { optionalInt, requireString } from "./validate.js";

/**
 * The key stores as AWS's custom key store operations show them. A key store is one PKCS#11 token from the
 * configuration; its id (and name: the same string) is the configured `keyStores[].id`.
 */
export async function describeCustomKeyStores(
  deps: ServiceDeps,
  req: { customKeyStoreId?: string | undefined; customKeyStoreName?: string | undefined; limit?: number | undefined; marker?: string | undefined },
): Promise<{ keyStores: KeyStoreStatus[]; truncated: boolean; nextMarker?: string | undefined }> {
  const limit = optionalInt("Limit", req.limit, 1, 1000) ?? 100;
  authorizeAccount(deps, "DescribeCustomKeyStores");
  if (req.customKeyStoreId && req.customKeyStoreName) throw validation("Specify CustomKeyStoreId or CustomKeyStoreName, not both.");
  const wanted = req.customKeyStoreId || req.customKeyStoreName;
  const after = req.marker ? decodeMarker("s1", req.marker) : "";
  const c = connections(deps);
  const all = wanted ? [c.get(requireString("CustomKeyStoreId", wanted, 1, 64))] : c.list();
  const rows = all.filter((s) => s.keyStoreId > after).slice(0, limit + 1);
  const { items, truncated, nextMarker } = page(rows, limit, "s1", (s) => s.keyStoreId);
  return { keyStores: items, truncated, nextMarker };
}

/** ConnectCustomKeyStore: opens the token again (PIN read afresh); a failure shows as FAILED with its reason. */
export async function connectCustomKeyStore(deps: ServiceDeps, req: { customKeyStoreId?: string | undefined }): Promise<void> {
  authorizeAccount(deps, "ConnectCustomKeyStore");
  await connections(deps).connect(requireString("CustomKeyStoreId", req.customKeyStoreId, 1, 64));
}

/** DisconnectCustomKeyStore: its keys answer KMSInvalidStateException (state Unavailable) until connected. */
export async function disconnectCustomKeyStore(deps: ServiceDeps, req: { customKeyStoreId?: string | undefined }): Promise<void> {
  authorizeAccount(deps, "DisconnectCustomKeyStore");
  await connections(deps).disconnect(requireString("CustomKeyStoreId", req.customKeyStoreId, 1, 64));
}

/**
 * The connected store to create a key in or draw random bytes from: the named one or the default.
 * CustomKeyStoreNotFoundException when no store has the id, CustomKeyStoreInvalidStateException when it is
 * not connected (as AWS answers CreateKey in a disconnected custom key store).
 */
export function connectedStore(deps: ServiceDeps, keyStoreId: string | undefined): KeyStore {
  const id = keyStoreId ? requireString("CustomKeyStoreId", keyStoreId, 1, 64) : deps.defaultKeyStoreId;
  const store = deps.keyStores.get(id);
  if (store) return store;
  const status = deps.connections ? deps.connections.get(id) : undefined;
  if (!status) throw new KmsError("CustomKeyStoreNotFoundException", `Key store '${id}' does not exist.`);
  throw new KmsError("CustomKeyStoreInvalidStateException", `Key store '${id}' is ${status.connectionState}, not CONNECTED.`);
}

function connections(deps: ServiceDeps): KeyStoreConnections {
  if (!deps.connections) throw new KmsError("UnsupportedOperationException", "Key store connections are not managed by this service.");
  return deps.connections;
}
