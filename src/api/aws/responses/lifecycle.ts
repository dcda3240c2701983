import { page, type PageFields, type ResponseStyle, timestamp } from "./style.js";

/** Responses of the key lifecycle operations: aliases, deletion, tags, rotation, key stores. */

/** CancelKeyDeletion and RotateKeyOnDemand: the key's ARN only. */
export function keyIdResponse(res: { readonly keyId: string }) {
  return { KeyId: res.keyId };
}

/** An alias as the service lists it and as the ts-proto AliasListEntry carries it. */
export interface AliasFields {
  readonly aliasName: string;
  readonly aliasArn: string;
  readonly targetKeyId: string;
  readonly creationDate?: Date | undefined;
  readonly lastUpdatedDate?: Date | undefined;
}

/** ListAliases. */
export function listAliasesResponse(res: PageFields & { readonly aliases: readonly AliasFields[] }, style: ResponseStyle) {
  const Aliases = res.aliases.map((a) => ({
    AliasName: a.aliasName,
    AliasArn: a.aliasArn,
    TargetKeyId: a.targetKeyId,
    CreationDate: timestamp(a.creationDate, style),
    LastUpdatedDate: timestamp(a.lastUpdatedDate, style),
  }));
  return { Aliases, ...page(res) };
}

/** ScheduleKeyDeletion. */
export function scheduleKeyDeletionResponse(
  res: { readonly keyId: string; readonly deletionDate?: Date | undefined; readonly keyState: string; readonly pendingWindowInDays: number },
  style: ResponseStyle,
) {
  return { KeyId: res.keyId, DeletionDate: timestamp(res.deletionDate, style), KeyState: res.keyState, PendingWindowInDays: res.pendingWindowInDays };
}

/** ListResourceTags. */
export function listResourceTagsResponse(res: PageFields & { readonly tags: readonly { readonly tagKey: string; readonly tagValue: string }[] }) {
  return { Tags: res.tags.map((t) => ({ TagKey: t.tagKey, TagValue: t.tagValue })), ...page(res) };
}

/** GetKeyRotationStatus: the period and next date only while automatic rotation is enabled. */
export function getKeyRotationStatusResponse(
  res: { readonly keyRotationEnabled: boolean; readonly keyId: string; readonly rotationPeriodInDays?: number | undefined; readonly nextRotationDate?: Date | undefined },
  style: ResponseStyle,
) {
  return {
    KeyRotationEnabled: res.keyRotationEnabled,
    KeyId: res.keyId,
    ...(res.rotationPeriodInDays !== undefined ? { RotationPeriodInDays: res.rotationPeriodInDays } : {}),
    ...(res.nextRotationDate ? { NextRotationDate: style.date(res.nextRotationDate) } : {}),
  };
}

/** ListKeyRotations. */
export function listKeyRotationsResponse(
  res: PageFields & { readonly rotations: readonly { readonly keyId: string; readonly rotationDate?: Date | undefined; readonly rotationType: string }[] },
  style: ResponseStyle,
) {
  const Rotations = res.rotations.map((x) => ({ KeyId: x.keyId, RotationDate: timestamp(x.rotationDate, style), RotationType: x.rotationType }));
  return { Rotations, ...page(res) };
}

/**
 * A key store under AWS's member names ("" when absent), as the ts-proto CustomKeyStoresListEntry carries
 * it; the facade converts the service's KeyStoreStatus with the gRPC codec's keyStoreToProto, the one mapping.
 */
export interface KeyStoreFields {
  readonly customKeyStoreId: string;
  readonly customKeyStoreName: string;
  readonly connectionState: string;
  readonly connectionErrorCode: string;
  /** p11kms extension: why the connection failed, for the operator. */
  readonly connectionErrorReason: string;
  readonly creationDate: Date | undefined;
}

/** DescribeCustomKeyStores: ConnectionErrorCode only for a store that failed. */
export function describeCustomKeyStoresResponse(res: PageFields & { readonly customKeyStores: readonly KeyStoreFields[] }, style: ResponseStyle) {
  const CustomKeyStores = res.customKeyStores.map((s) => ({
    CustomKeyStoreId: s.customKeyStoreId,
    CustomKeyStoreName: s.customKeyStoreName,
    ConnectionState: s.connectionState,
    ...(s.connectionErrorCode
      ? { ConnectionErrorCode: s.connectionErrorCode, ...(style.extensions ? { ConnectionErrorReason: s.connectionErrorReason } : {}) }
      : {}),
    CreationDate: timestamp(s.creationDate, style),
  }));
  return { CustomKeyStores, ...page(res) };
}
