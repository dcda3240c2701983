import type { KeyMetadata as DomainKeyMetadata } from "../../kms/types.js";
import type { KeyMetadata } from "../../gen/p11kms/v1/kms.js";

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
 * A proto map → the domain's context object. Decoded as a Map (ts-proto useMapType) and copied with
 * Object.fromEntries, which defines own properties: a key such as "__proto__" stays a key instead of being
 * swallowed by an object literal's prototype setter and silently dropped from the bound context.
 */
export function context(m: Map<string, string>): Record<string, string> {
  return Object.fromEntries(m);
}
