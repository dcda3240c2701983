import type { handleUnaryCall } from "@grpc/grpc-js";
import type { KeyManagementServiceServer } from "../../gen/p11kms/v1/kms.js";
import type { KmsService } from "../../kms/service.js";
import { keyStoreToProto } from "./codec.js";

/**
 * kms-handlers.ts's wrapper: identify the caller, admit, call, encode, with errors mapped through the one table.
 * `service` is the service bound to the call's caller.
 */
export type UnaryWrapper = <Req, Res>(operation: string, fn: (req: Req, service: KmsService) => Promise<Res>) => handleUnaryCall<Req, Res>;

type LifecycleRpcs =
  | "createAlias"
  | "updateAlias"
  | "deleteAlias"
  | "listAliases"
  | "enableKey"
  | "disableKey"
  | "scheduleKeyDeletion"
  | "cancelKeyDeletion"
  | "updateKeyDescription"
  | "tagResource"
  | "untagResource"
  | "listResourceTags"
  | "enableKeyRotation"
  | "disableKeyRotation"
  | "getKeyRotationStatus"
  | "rotateKeyOnDemand"
  | "listKeyRotations"
  | "describeCustomKeyStores"
  | "connectCustomKeyStore"
  | "disconnectCustomKeyStore";

const empty = async (p: Promise<void>) => {
  await p;
  return {};
};

/**
 * The key lifecycle RPCs: aliases, states and deletion, descriptions and tags, rotation, key stores.
 * Field names match the domain's, so requests pass through; "" means absent, as everywhere on gRPC.
 */
export function lifecycleHandlers(unary: UnaryWrapper): Pick<KeyManagementServiceServer, LifecycleRpcs> {
  return {
    createAlias: unary("CreateAlias", (r, service) => empty(service.createAlias(r))),
    updateAlias: unary("UpdateAlias", (r, service) => empty(service.updateAlias(r))),
    deleteAlias: unary("DeleteAlias", (r, service) => empty(service.deleteAlias(r))),
    listAliases: unary("ListAliases", async (r, service) => {
      const res = await service.listAliases(r);
      return { aliases: res.aliases, truncated: res.truncated, nextMarker: res.nextMarker ?? "" };
    }),
    enableKey: unary("EnableKey", (r, service) => empty(service.enableKey(r))),
    disableKey: unary("DisableKey", (r, service) => empty(service.disableKey(r))),
    scheduleKeyDeletion: unary("ScheduleKeyDeletion", (r, service) => service.scheduleKeyDeletion(r)),
    cancelKeyDeletion: unary("CancelKeyDeletion", (r, service) => service.cancelKeyDeletion(r)),
    updateKeyDescription: unary("UpdateKeyDescription", (r, service) => empty(service.updateKeyDescription(r))),
    tagResource: unary("TagResource", (r, service) => empty(service.tagResource(r))),
    untagResource: unary("UntagResource", (r, service) => empty(service.untagResource(r))),
    listResourceTags: unary("ListResourceTags", async (r, service) => {
      const res = await service.listResourceTags(r);
      return { tags: res.tags, truncated: res.truncated, nextMarker: res.nextMarker ?? "" };
    }),
    enableKeyRotation: unary("EnableKeyRotation", (r, service) => empty(service.enableKeyRotation(r))),
    disableKeyRotation: unary("DisableKeyRotation", (r, service) => empty(service.disableKeyRotation(r))),
    getKeyRotationStatus: unary("GetKeyRotationStatus", async (r, service) => {
      const res = await service.getKeyRotationStatus(r);
      return { ...res, nextRotationDate: res.nextRotationDate };
    }),
    rotateKeyOnDemand: unary("RotateKeyOnDemand", (r, service) => service.rotateKeyOnDemand(r)),
    listKeyRotations: unary("ListKeyRotations", async (r, service) => {
      const res = await service.listKeyRotations(r);
      return { rotations: res.rotations, truncated: res.truncated, nextMarker: res.nextMarker ?? "" };
    }),
    describeCustomKeyStores: unary("DescribeCustomKeyStores", async (r, service) => {
      const res = await service.describeCustomKeyStores(r);
      return { customKeyStores: res.keyStores.map(keyStoreToProto), truncated: res.truncated, nextMarker: res.nextMarker ?? "" };
    }),
    connectCustomKeyStore: unary("ConnectCustomKeyStore", (r, service) => empty(service.connectCustomKeyStore(r))),
    disconnectCustomKeyStore: unary("DisconnectCustomKeyStore", (r, service) => empty(service.disconnectCustomKeyStore(r))),
  };
}
