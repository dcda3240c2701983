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
  };
}
