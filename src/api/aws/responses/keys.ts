import type { KeyMetadata as DomainKeyMetadata } from "../../../kms/types.js";
import { b64, nonEmpty, page, type PageFields, type ResponseStyle, timestamp } from "./style.js";

/**
 * A member's type as both sources carry it: the domain's literal unions as plain strings (ts-proto types
 * them so), and a Date possibly undefined (an unset proto3 Timestamp). "" for an absent string is treated
 * as absent, like undefined.
 */
type Carried<T> = T extends Date ? Date | undefined : T extends readonly string[] ? readonly string[] : T extends string ? string : T;

/**
 * Key metadata as both sources carry it: the service's KeyMetadata (src/kms/types.ts, which names every
 * member) and the ts-proto KeyMetadata message. Derived rather than listed, so a member the service adds
 * reaches this shape, and the proto must carry it for the CLI to compile.
 */
export type KeyMetadataFields = { readonly [K in keyof DomainKeyMetadata]: Carried<DomainKeyMetadata[K]> };

/** AWS's KeyMetadata structure (CreateKey, DescribeKey). */
export function keyMetadata(m: KeyMetadataFields, style: ResponseStyle) {
  return {
    AWSAccountId: m.awsAccountId,
    KeyId: m.keyId,
    Arn: m.arn,
    CreationDate: timestamp(m.creationDate, style),
    Enabled: m.enabled,
    Description: m.description,
    KeyUsage: m.keyUsage,
    KeyState: m.keyState,
    ...(m.deletionDate ? { DeletionDate: style.date(m.deletionDate) } : {}),
    Origin: m.origin,
    KeyManager: m.keyManager,
    // Deprecated by AWS but still sent, always equal to KeySpec: older SDKs read only this one.
    CustomerMasterKeySpec: m.keySpec,
    KeySpec: m.keySpec,
    ...nonEmpty("EncryptionAlgorithms", m.encryptionAlgorithms),
    ...nonEmpty("SigningAlgorithms", m.signingAlgorithms),
    ...nonEmpty("MacAlgorithms", m.macAlgorithms),
    // Every key lives in a configured key store (a PKCS#11 token), which DescribeCustomKeyStores lists.
    ...(m.customKeyStoreId ? { CustomKeyStoreId: m.customKeyStoreId } : {}),
    ...(m.expirationModel ? { ExpirationModel: m.expirationModel } : {}),
    ...(m.validTo ? { ValidTo: style.date(m.validTo) } : {}),
    // AWS always sends the member; multi-Region keys are not supported here (CreateKey refuses them).
    MultiRegion: false,
    ...(style.extensions && m.rsaOaepSha256Decryption ? { P11kmsRsaOaepSha256Decryption: m.rsaOaepSha256Decryption } : {}),
  };
}

/**
 * CreateKey and DescribeKey. The service returns the metadata itself, gRPC wraps it in an optional message
 * field: undefined metadata gives `{}` once printed, as before.
 */
export function keyMetadataResponse(m: KeyMetadataFields | undefined, style: ResponseStyle) {
  return { KeyMetadata: m && keyMetadata(m, style) };
}

/** ListKeys. */
export function listKeysResponse(res: PageFields & { readonly keys: readonly { readonly keyId: string; readonly keyArn: string }[] }) {
  return { Keys: res.keys.map((k) => ({ KeyId: k.keyId, KeyArn: k.keyArn })), ...page(res) };
}

/** GetParametersForImport. */
export function getParametersForImportResponse(
  res: { readonly keyId: string; readonly importToken: Uint8Array; readonly publicKey: Uint8Array; readonly parametersValidTo?: Date | undefined },
  style: ResponseStyle,
) {
  return { KeyId: res.keyId, ImportToken: b64(res.importToken), PublicKey: b64(res.publicKey), ParametersValidTo: timestamp(res.parametersValidTo, style) };
}
