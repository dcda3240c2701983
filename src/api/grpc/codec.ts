import type { KeyStoreStatus } from "../../kms/key-store-connections.js";
import type { KeyMetadata as DomainKeyMetadata } from "../../kms/types.js";
import type { CustomKeyStoresListEntry, KeyMetadata } from "../../gen/p11kms/v1/kms.js";

/**
 * Domain ⇄ proto shapes. Field names already match (both follow AWS), so requests pass straight to the
 * service; proto3 leaves unset strings as "", which the service treats as absent.
 */
export function keyMetadataToProto(m: DomainKeyMetadata): KeyMetadata {
  return {
    awsAccountId: m.awsAccountId,
    keyId: m.keyId,
    arn: m.arn,
    creationDate: m.creationDate,
    enabled: m.enabled,
    description: m.description,
    keyUsage: m.keyUsage,
    keyState: m.keyState,
    deletionDate: m.deletionDate,
    origin: m.origin,
    keyManager: m.keyManager,
    keySpec: m.keySpec,
    customerMasterKeySpec: m.keySpec,
    encryptionAlgorithms: [...m.encryptionAlgorithms],
    multiRegion: false,
    signingAlgorithms: [...m.signingAlgorithms],
    macAlgorithms: [...m.macAlgorithms],
    customKeyStoreId: m.customKeyStoreId ?? "",
    rsaOaepSha256Decryption: m.rsaOaepSha256Decryption ?? "",
    expirationModel: m.expirationModel ?? "",
    validTo: m.validTo,
  };
}

/**
 * A key store status under AWS's member names, as DescribeCustomKeyStores lists it. The service names a store
 * by its configuration (its id is also its name) and nests the failure; AWS and the proto use flat members.
 * The AWS facade renders this message too, so both APIs list key stores from one mapping.
 */
export function keyStoreToProto(s: KeyStoreStatus): CustomKeyStoresListEntry {
  return {
    customKeyStoreId: s.keyStoreId,
    customKeyStoreName: s.keyStoreId,
    connectionState: s.connectionState,
    connectionErrorCode: s.failure?.code ?? "",
    connectionErrorReason: s.failure?.reason ?? "",
    creationDate: s.creationDate,
  };
}

/**
 * A proto map → the domain's context object. Decoded as a Map (ts-proto useMapType) and copied with
 * Object.fromEntries, which defines own properties: a key such as "__proto__" stays a key instead of being
 * swallowed by an object literal's prototype setter and silently dropped from the bound context.
 */
export function context(m: Map<string, string>): Record<string, string> {
  return Object.fromEntries(m);
}
