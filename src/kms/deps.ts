import type { AccessConfig, Authorizer, AuthzContext, AuthzOutcome } from "./authz/authorizer.js";
import type { Caller } from "./caller.js";
import { type AuditScope, noteKey } from "./audit-scope.js";
import { KmsError } from "./errors.js";
import { isAliasName, keyArn, type Partition } from "./key-ids.js";
import type { KeyStoreConnections } from "./key-store-connections.js";
import type { Clock, KeyStore, MetadataStore } from "./ports.js";
import { assertUsable } from "./rules.js";
import type { KeyRecord, KeyUsage, UnwrapPath } from "./types.js";

/**
 * Lifecycle events the daemon turns into log lines and metrics. The domain only reports them; every
 * method must be cheap and must not throw.
 */
export interface LifecycleEvents {
  /** A request tried to use a key that is pending deletion: someone still depends on a key being deleted. */
  pendingDeletionUse(e: { keyId: string; operation: string; deletionDate: Date | undefined }): void;
  keyDeleted(e: { keyId: string; keyStoreId: string; versions: number }): void;
  keyRotated(e: { keyId: string; version: number; rotationType: "AUTOMATIC" | "ON_DEMAND" }): void;
  /**
   * Key material was imported (BYOK), or re-imported over the same material to change its expiry
   * (`reimport`). `unwrapPath` says where the unwrap ran: "device", or "software" (SHA-256 OAEP decoded in
   * the process, where the key store's importOaepSha256Fallback allows it). Never carries material or
   * token secrets.
   */
  materialImported?(e: {
    keyId: string;
    keyStoreId: string;
    wrappingAlgorithm: string;
    unwrapPath: UnwrapPath;
    expirationModel: string;
    validTo: Date | undefined;
    reimport: boolean;
  }): void;
  /** Imported material was destroyed: deleted by request, or expired at its ValidTo. */
  materialRemoved?(e: { keyId: string; keyStoreId: string; reason: "deleted" | "expired" }): void;
  /** A due job (deletion or rotation) could not run now and will be retried. */
  jobDeferred(e: { keyId: string; job: "deletion" | "rotation" | "expiry"; reason: string; err?: unknown }): void;
}

/** What every operation needs: the ports, plus the partition ARNs are minted in. */
export interface ServiceDeps {
  readonly metadata: MetadataStore;
  /**
   * The key stores that are connected right now. A configured store that is disconnected (or failed) is
   * absent, and its keys read as Unavailable; {@link ServiceDeps.connections} knows about every store.
   */
  readonly keyStores: ReadonlyMap<string, KeyStore>;
  /** The store new keys go to when the request names none. */
  readonly defaultKeyStoreId: string;
  readonly clock: Clock;
  readonly partition: Partition;
  /** Bound on unexpired import parameter sets per key store (default DEFAULT_MAX_IMPORT_PARAMETER_SETS). */
  readonly maxImportParameterSets?: number;
  /** Unexpired import parameter sets kept per key; older ones go (default DEFAULT_IMPORT_PARAMETER_SETS_PER_KEY). */
  readonly importParameterSetsPerKey?: number;
  readonly events?: LifecycleEvents | undefined;
  /** Connection management of the configured key stores (absent in tests that build bare deps). */
  readonly connections?: KeyStoreConnections | undefined;
  /** The administrator and account-level principals; absent: the account root `arn:aws:iam::<account>:root`. */
  readonly access?: AccessConfig | undefined;
  /** Who the current request is from; set by KmsService for each bound view (absent → every check refuses). */
  readonly caller?: Caller | undefined;
  /** Key policy and grant evaluation; set by KmsService. */
  readonly authz?: Authorizer | undefined;
  /** The audit scope of the current request (what its event reports); absent when nothing is audited. */
  readonly audit?: AuditScope | undefined;
}

/** The request's caller and the authorizer; a deps object without them cannot authorize anything. */
export function requestAccess(deps: ServiceDeps): { caller: Caller; authz: Authorizer } {
  if (!deps.caller || !deps.authz) throw new KmsError("AccessDeniedException", "The request has no authenticated caller.");
  return { caller: deps.caller, authz: deps.authz };
}

/** Authorizes `operation` (an AWS operation name, e.g. "Encrypt") on a loaded key against its policy and grants. */
export async function authorizeKey(deps: ServiceDeps, key: KeyRecord, operation: string, ctx?: AuthzContext): Promise<AuthzOutcome> {
  const { caller, authz } = requestAccess(deps);
  return authz.authorize(caller, key, keyArn(deps.partition, key.keyId), operation, ctx);
}

/** Loads a key (by id or alias) and authorizes `operation` on it; kms:RequestAlias is set when named by alias. */
export async function authorizedKey(deps: ServiceDeps, keyIdOrAlias: string, operation: string, ctx: AuthzContext = {}): Promise<KeyRecord> {
  const key = await loadKey(deps, keyIdOrAlias);
  await authorizeKey(deps, key, operation, isAliasName(keyIdOrAlias) ? { ...ctx, requestAlias: keyIdOrAlias } : ctx);
  return key;
}

/** Account-level operations (CreateKey, ListKeys, ...): no key policy applies (docs/authorization.md). */
export function authorizeAccount(deps: ServiceDeps, operation: string): void {
  const { caller, authz } = requestAccess(deps);
  authz.authorizeAccount(caller, operation, `arn:aws:kms:${deps.partition.region}:${deps.partition.accountId}:*`);
}

/**
 * Loads a visible key by key id, or by alias name where the caller parsed one (key ids are UUIDs, alias
 * names start with `alias/`). A key still being created, or already deleted, does not exist for clients.
 * The state is the effective one: a key of a disconnected key store reads Unavailable.
 */
export async function loadKey(deps: ServiceDeps, keyIdOrAlias: string): Promise<KeyRecord> {
  let keyId = keyIdOrAlias;
  if (isAliasName(keyIdOrAlias)) {
    const alias = await deps.metadata.getAlias(keyIdOrAlias);
    if (!alias) throw new KmsError("NotFoundException", `Alias ${aliasArnOf(deps, keyIdOrAlias)} is not found.`);
    keyId = alias.targetKeyId;
  }
  const key = await deps.metadata.getKey(keyId);
  if (!key || key.keyState === "Creating" || key.deletedAt) {
    throw new KmsError("NotFoundException", `Key '${keyIdOrAlias}' does not exist.`);
  }
  noteKey(deps.audit, key.keyId);
  return effective(deps, key);
}

/**
 * The state clients see: Enabled or Disabled keys of a key store that is not connected are Unavailable
 * (as AWS shows keys of a disconnected custom key store); the stored state returns on reconnection.
 */
export function effective(deps: ServiceDeps, key: KeyRecord): KeyRecord {
  if ((key.keyState === "Enabled" || key.keyState === "Disabled") && !deps.keyStores.has(key.keyStoreId)) {
    return { ...key, keyState: "Unavailable", storedState: key.keyState };
  }
  return key;
}

/**
 * The one shared usability check of cryptographic operations, with the pending-deletion alarm: a key
 * pending deletion is refused as AWS refuses it, and the attempt is reported, because it means someone
 * still depends on a key that is about to be destroyed.
 */
export function checkUsable(deps: ServiceDeps, key: KeyRecord, usage: KeyUsage | undefined, operation: string): void {
  if (key.keyState === "PendingDeletion") {
    deps.events?.pendingDeletionUse({ keyId: key.keyId, operation, deletionDate: key.deletionDate });
  }
  assertUsable(key, usage);
}

export function storeOf(deps: ServiceDeps, key: KeyRecord): KeyStore {
  const store = deps.keyStores.get(key.keyStoreId);
  if (!store) {
    throw new KmsError("KMSInvalidStateException", `The key store of key ${key.keyId} is not connected.`);
  }
  return store;
}

function aliasArnOf(deps: ServiceDeps, aliasName: string): string {
  return `arn:aws:kms:${deps.partition.region}:${deps.partition.accountId}:${aliasName}`;
}
