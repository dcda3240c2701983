import * as aliases from "./alias-operations.js";
import * as asym from "./asymmetric-operations.js";
import type { AuditScope } from "./audit-scope.js";
import { Authorizer } from "./authz/authorizer.js";
import type { Caller } from "./caller.js";
import * as crypto from "./crypto-operations.js";
import * as pairs from "./data-key-pairs.js";
import type { ServiceDeps } from "./deps.js";
import * as grants from "./grant-operations.js";
import * as imports from "./import-operations.js";
import * as keys from "./key-operations.js";
import * as stores from "./key-store-operations.js";
import * as mac from "./mac-operations.js";
import * as policies from "./policy-operations.js";
import * as rotation from "./rotation-operations.js";
import * as states from "./state-operations.js";
import * as tags from "./tag-operations.js";

type Req<F extends (deps: ServiceDeps, req: never) => unknown> = Parameters<F>[1];

/**
 * What a facade holds: it can only reach the operations through {@link KmsService.as}, so no request can
 * run without the caller it came from.
 */
export interface CallerScopedService {
  /** The service acting for `caller`; operations report what they touch to `audit` (the request's audit scope). */
  as(caller: Caller, audit?: AuditScope): KmsService;
}

/**
 * The service layer: one method per KMS operation, shared by every API facade, bound to one caller (every
 * operation that touches a key authorizes against its policy and grants; account-level ones against the
 * configured administrators). Methods take and return plain domain objects and throw only KmsError.
 */
export class KmsService implements CallerScopedService {
  readonly deps: ServiceDeps;

  /**
   * `caller` is required: the daemon builds its root service with INTERNAL_CALLER (lifecycle lookups) and
   * hands facades only the {@link CallerScopedService} view; tests pass INTERNAL_CALLER explicitly.
   */
  constructor(deps: ServiceDeps, readonly caller: Caller, audit?: AuditScope) {
    const authz = deps.authz ?? new Authorizer(deps.metadata, { administrator: policies.administratorOf(deps), accountPrincipals: deps.access?.accountPrincipals ?? [] });
    this.deps = { ...deps, caller, authz, audit };
  }

  /** The same service acting for `caller` (shares the policy cache), reporting to the request's audit scope. */
  as(caller: Caller, audit?: AuditScope): KmsService {
    return new KmsService(this.deps, caller, audit);
  }

  createKey(req: keys.CreateKeyRequest) {
    return keys.createKey(this.deps, req);
  }
  describeKey(req: Parameters<typeof keys.describeKey>[1]) {
    return keys.describeKey(this.deps, req);
  }
  listKeys(req: Parameters<typeof keys.listKeys>[1]) {
    return keys.listKeys(this.deps, req);
  }

  encrypt(req: crypto.EncryptRequest) {
    return crypto.encrypt(this.deps, req);
  }
  decrypt(req: crypto.DecryptRequest) {
    return crypto.decrypt(this.deps, req);
  }
  reEncrypt(req: crypto.ReEncryptRequest) {
    return crypto.reEncrypt(this.deps, req);
  }
  generateDataKey(req: crypto.GenerateDataKeyRequest) {
    return crypto.generateDataKey(this.deps, req);
  }
  generateDataKeyWithoutPlaintext(req: crypto.GenerateDataKeyRequest) {
    return crypto.generateDataKeyWithoutPlaintext(this.deps, req);
  }
  generateRandom(req: Parameters<typeof crypto.generateRandom>[1]) {
    return crypto.generateRandom(this.deps, req);
  }

  getPublicKey(req: Parameters<typeof asym.getPublicKey>[1]) {
    return asym.getPublicKey(this.deps, req);
  }
  sign(req: asym.SignRequest) {
    return asym.sign(this.deps, req);
  }
  verify(req: asym.VerifyRequest) {
    return asym.verify(this.deps, req);
  }
  generateDataKeyPair(req: pairs.GenerateDataKeyPairRequest) {
    return pairs.generateDataKeyPair(this.deps, req);
  }
  generateDataKeyPairWithoutPlaintext(req: pairs.GenerateDataKeyPairRequest) {
    return pairs.generateDataKeyPairWithoutPlaintext(this.deps, req);
  }

  generateMac(req: mac.GenerateMacRequest) {
    return mac.generateMac(this.deps, req);
  }
  verifyMac(req: mac.VerifyMacRequest) {
    return mac.verifyMac(this.deps, req);
  }

  createAlias(req: Req<typeof aliases.createAlias>) {
    return aliases.createAlias(this.deps, req);
  }
  updateAlias(req: Req<typeof aliases.updateAlias>) {
    return aliases.updateAlias(this.deps, req);
  }
  deleteAlias(req: Req<typeof aliases.deleteAlias>) {
    return aliases.deleteAlias(this.deps, req);
  }
  listAliases(req: Req<typeof aliases.listAliases>) {
    return aliases.listAliases(this.deps, req);
  }

  enableKey(req: Req<typeof states.enableKey>) {
    return states.enableKey(this.deps, req);
  }
  disableKey(req: Req<typeof states.disableKey>) {
    return states.disableKey(this.deps, req);
  }
  scheduleKeyDeletion(req: Req<typeof states.scheduleKeyDeletion>) {
    return states.scheduleKeyDeletion(this.deps, req);
  }
  cancelKeyDeletion(req: Req<typeof states.cancelKeyDeletion>) {
    return states.cancelKeyDeletion(this.deps, req);
  }

  updateKeyDescription(req: Req<typeof tags.updateKeyDescription>) {
    return tags.updateKeyDescription(this.deps, req);
  }
  tagResource(req: Req<typeof tags.tagResource>) {
    return tags.tagResource(this.deps, req);
  }
  untagResource(req: Req<typeof tags.untagResource>) {
    return tags.untagResource(this.deps, req);
  }
  listResourceTags(req: Req<typeof tags.listResourceTags>) {
    return tags.listResourceTags(this.deps, req);
  }

  enableKeyRotation(req: Req<typeof rotation.enableKeyRotation>) {
    return rotation.enableKeyRotation(this.deps, req);
  }
  disableKeyRotation(req: Req<typeof rotation.disableKeyRotation>) {
    return rotation.disableKeyRotation(this.deps, req);
  }
  getKeyRotationStatus(req: Req<typeof rotation.getKeyRotationStatus>) {
    return rotation.getKeyRotationStatus(this.deps, req);
  }
  rotateKeyOnDemand(req: Req<typeof rotation.rotateKeyOnDemand>) {
    return rotation.rotateKeyOnDemand(this.deps, req);
  }
  listKeyRotations(req: Req<typeof rotation.listKeyRotations>) {
    return rotation.listKeyRotations(this.deps, req);
  }

  getParametersForImport(req: Req<typeof imports.getParametersForImport>) {
    return imports.getParametersForImport(this.deps, req);
  }
  importKeyMaterial(req: imports.ImportKeyMaterialRequest) {
    return imports.importKeyMaterial(this.deps, req);
  }
  deleteImportedKeyMaterial(req: Req<typeof imports.deleteImportedKeyMaterial>) {
    return imports.deleteImportedKeyMaterial(this.deps, req);
  }

  describeCustomKeyStores(req: Req<typeof stores.describeCustomKeyStores>) {
    return stores.describeCustomKeyStores(this.deps, req);
  }
  connectCustomKeyStore(req: Req<typeof stores.connectCustomKeyStore>) {
    return stores.connectCustomKeyStore(this.deps, req);
  }
  disconnectCustomKeyStore(req: Req<typeof stores.disconnectCustomKeyStore>) {
    return stores.disconnectCustomKeyStore(this.deps, req);
  }

  putKeyPolicy(req: Req<typeof policies.putKeyPolicy>) {
    return policies.putKeyPolicy(this.deps, req);
  }
  getKeyPolicy(req: Req<typeof policies.getKeyPolicy>) {
    return policies.getKeyPolicy(this.deps, req);
  }
  listKeyPolicies(req: Req<typeof policies.listKeyPolicies>) {
    return policies.listKeyPolicies(this.deps, req);
  }

  createGrant(req: grants.CreateGrantRequest) {
    return grants.createGrant(this.deps, req);
  }
  listGrants(req: Req<typeof grants.listGrants>) {
    return grants.listGrants(this.deps, req);
  }
  listRetirableGrants(req: Req<typeof grants.listRetirableGrants>) {
    return grants.listRetirableGrants(this.deps, req);
  }
  retireGrant(req: Req<typeof grants.retireGrant>) {
    return grants.retireGrant(this.deps, req);
  }
  revokeGrant(req: Req<typeof grants.revokeGrant>) {
    return grants.revokeGrant(this.deps, req);
  }
}
