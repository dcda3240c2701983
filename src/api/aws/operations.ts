import { z } from "zod";
import { KmsError } from "../../kms/errors.js";
import type { KmsService } from "../../kms/service.js";
import { keyStoreToProto } from "../grpc/codec.js";
import { blob, bool, int, shape, str, stringMap, strList } from "./json-codec.js";
import { createGrantResponse, getKeyPolicyResponse, listGrantsResponse, listKeyPoliciesResponse } from "./responses/authz.js";
import { decryptResponse, encryptResponse, generateDataKeyPairResponse, generateDataKeyPairWithoutPlaintextResponse, generateDataKeyResponse, generateDataKeyWithoutPlaintextResponse, generateMacResponse, generateRandomResponse, getPublicKeyResponse, reEncryptResponse, signResponse, verifyMacResponse, verifyResponse } from "./responses/crypto.js";
import { getParametersForImportResponse, keyMetadataResponse, listKeysResponse } from "./responses/keys.js";
import { describeCustomKeyStoresResponse, getKeyRotationStatusResponse, keyIdResponse, listAliasesResponse, listKeyRotationsResponse, listResourceTagsResponse, scheduleKeyDeletionResponse } from "./responses/lifecycle.js";
import { AWS_JSON } from "./responses/style.js";

/**
 * Every operation of the AWS facade: request schema, call into the service, response shape (from
 * responses/, which the CLI shares, rendered in the AWS_JSON style). Adding an operation to the service
 * means adding one entry here (and one handler on the gRPC side).
 */
export interface AwsOperation {
  readonly schema: z.ZodType;
  run(service: KmsService, req: never): Promise<Record<string, unknown>>;
}

function op<S extends z.ZodType>(schema: S, run: (service: KmsService, req: z.output<S>) => Promise<Record<string, unknown>>): AwsOperation {
  return { schema, run: run as AwsOperation["run"] };
}

const tag = z.object({ TagKey: str, TagValue: str }).strict();
const dataKeyRequest = shape({
  KeyId: str,
  EncryptionContext: stringMap,
  NumberOfBytes: int,
  KeySpec: str,
  GrantTokens: strList,
  DryRun: bool,
});
const dataKeyArgs = (r: z.output<typeof dataKeyRequest>) => ({
  keyId: r.KeyId,
  encryptionContext: r.EncryptionContext,
  numberOfBytes: r.NumberOfBytes,
  keySpec: r.KeySpec,
  grantTokens: r.GrantTokens,
  dryRun: r.DryRun,
});

const signRequest = shape({ KeyId: str, Message: blob, MessageType: str, SigningAlgorithm: str, GrantTokens: strList, DryRun: bool });
const signArgs = (r: z.output<typeof signRequest>) => ({
  keyId: r.KeyId,
  message: r.Message,
  messageType: r.MessageType,
  signingAlgorithm: r.SigningAlgorithm,
  grantTokens: r.GrantTokens,
  dryRun: r.DryRun,
});
const macRequest = shape({ KeyId: str, Message: blob, MacAlgorithm: str, GrantTokens: strList, DryRun: bool });
const macArgs = (r: z.output<typeof macRequest>) => ({
  keyId: r.KeyId,
  message: r.Message,
  macAlgorithm: r.MacAlgorithm,
  grantTokens: r.GrantTokens,
  dryRun: r.DryRun,
});
const dataKeyPairRequest = shape({ KeyId: str, KeyPairSpec: str, EncryptionContext: stringMap, GrantTokens: strList, DryRun: bool });
const dataKeyPairArgs = (r: z.output<typeof dataKeyPairRequest>) => ({
  keyId: r.KeyId,
  keyPairSpec: r.KeyPairSpec,
  encryptionContext: r.EncryptionContext,
  grantTokens: r.GrantTokens,
  dryRun: r.DryRun,
});

export const OPERATIONS: Readonly<Record<string, AwsOperation>> = {
  CreateKey: op(
    shape({
      Description: str,
      KeyUsage: str,
      KeySpec: str,
      CustomerMasterKeySpec: str,
      Origin: str,
      Tags: tag.array(),
      MultiRegion: bool,
      Policy: str,
      BypassPolicyLockoutSafetyCheck: bool,
      CustomKeyStoreId: str,
    }),
    async (s, r) => {
      const m = await s.createKey({
        policy: r.Policy,
        bypassPolicyLockoutSafetyCheck: r.BypassPolicyLockoutSafetyCheck,
        description: r.Description,
        keyUsage: r.KeyUsage,
        keySpec: r.KeySpec,
        customerMasterKeySpec: r.CustomerMasterKeySpec,
        origin: r.Origin,
        multiRegion: r.MultiRegion,
        tags: r.Tags?.map((t) => ({ tagKey: t.TagKey, tagValue: t.TagValue })),
        customKeyStoreId: r.CustomKeyStoreId,
      });
      return keyMetadataResponse(m, AWS_JSON);
    },
  ),
  DescribeKey: op(shape({ KeyId: str, GrantTokens: strList }), async (s, r) =>
    keyMetadataResponse(await s.describeKey({ keyId: r.KeyId, grantTokens: r.GrantTokens }), AWS_JSON),
  ),
  ListKeys: op(shape({ Limit: int, Marker: str }), async (s, r) => listKeysResponse(await s.listKeys({ limit: r.Limit, marker: r.Marker }))),
  Encrypt: op(
    shape({ KeyId: str, Plaintext: blob, EncryptionContext: stringMap, GrantTokens: strList, EncryptionAlgorithm: str, DryRun: bool }),
    async (s, r) => {
      const res = await s.encrypt({
        keyId: r.KeyId,
        plaintext: r.Plaintext,
        encryptionContext: r.EncryptionContext,
        grantTokens: r.GrantTokens,
        encryptionAlgorithm: r.EncryptionAlgorithm,
        dryRun: r.DryRun,
      });
      return encryptResponse(res);
    },
  ),
  Decrypt: op(
    shape({ CiphertextBlob: blob, EncryptionContext: stringMap, GrantTokens: strList, KeyId: str, EncryptionAlgorithm: str, DryRun: bool }),
    async (s, r) => {
      const res = await s.decrypt({
        ciphertextBlob: r.CiphertextBlob,
        encryptionContext: r.EncryptionContext,
        grantTokens: r.GrantTokens,
        keyId: r.KeyId,
        encryptionAlgorithm: r.EncryptionAlgorithm,
        dryRun: r.DryRun,
      });
      return decryptResponse(res);
    },
  ),
  ReEncrypt: op(
    shape({
      CiphertextBlob: blob,
      SourceEncryptionContext: stringMap,
      SourceKeyId: str,
      DestinationKeyId: str,
      DestinationEncryptionContext: stringMap,
      SourceEncryptionAlgorithm: str,
      DestinationEncryptionAlgorithm: str,
      GrantTokens: strList,
      DryRun: bool,
    }),
    async (s, r) => {
      const res = await s.reEncrypt({
        ciphertextBlob: r.CiphertextBlob,
        sourceEncryptionContext: r.SourceEncryptionContext,
        sourceKeyId: r.SourceKeyId,
        destinationKeyId: r.DestinationKeyId,
        destinationEncryptionContext: r.DestinationEncryptionContext,
        sourceEncryptionAlgorithm: r.SourceEncryptionAlgorithm,
        destinationEncryptionAlgorithm: r.DestinationEncryptionAlgorithm,
        grantTokens: r.GrantTokens,
        dryRun: r.DryRun,
      });
      return reEncryptResponse(res);
    },
  ),
  GenerateDataKey: op(dataKeyRequest, async (s, r) => generateDataKeyResponse(await s.generateDataKey(dataKeyArgs(r)))),
  GenerateDataKeyWithoutPlaintext: op(dataKeyRequest, async (s, r) =>
    generateDataKeyWithoutPlaintextResponse(await s.generateDataKeyWithoutPlaintext(dataKeyArgs(r))),
  ),
  GetPublicKey: op(shape({ KeyId: str, GrantTokens: strList }), async (s, r) =>
    getPublicKeyResponse(await s.getPublicKey({ keyId: r.KeyId, grantTokens: r.GrantTokens })),
  ),
  Sign: op(signRequest, async (s, r) => signResponse(await s.sign(signArgs(r)))),
  Verify: op(signRequest.extend({ Signature: blob.optional() }), async (s, r) =>
    verifyResponse(await s.verify({ ...signArgs(r), signature: r.Signature })),
  ),
  GenerateMac: op(macRequest, async (s, r) => generateMacResponse(await s.generateMac(macArgs(r)))),
  VerifyMac: op(macRequest.extend({ Mac: blob.optional() }), async (s, r) => verifyMacResponse(await s.verifyMac({ ...macArgs(r), mac: r.Mac }))),
  GenerateDataKeyPair: op(dataKeyPairRequest, async (s, r) => generateDataKeyPairResponse(await s.generateDataKeyPair(dataKeyPairArgs(r)))),
  GenerateDataKeyPairWithoutPlaintext: op(dataKeyPairRequest, async (s, r) =>
    generateDataKeyPairWithoutPlaintextResponse(await s.generateDataKeyPairWithoutPlaintext(dataKeyPairArgs(r))),
  ),
  GenerateRandom: op(shape({ NumberOfBytes: int, CustomKeyStoreId: str }), async (s, r) =>
    generateRandomResponse(await s.generateRandom({ numberOfBytes: r.NumberOfBytes, customKeyStoreId: r.CustomKeyStoreId })),
  ),

  // Key lifecycle (docs/key-lifecycle.md): aliases, states and deletion, tags, rotation, key stores.
  CreateAlias: op(shape({ AliasName: str, TargetKeyId: str }), async (s, r) =>
    done(s.createAlias({ aliasName: r.AliasName, targetKeyId: r.TargetKeyId })),
  ),
  UpdateAlias: op(shape({ AliasName: str, TargetKeyId: str }), async (s, r) =>
    done(s.updateAlias({ aliasName: r.AliasName, targetKeyId: r.TargetKeyId })),
  ),
  DeleteAlias: op(shape({ AliasName: str }), async (s, r) => done(s.deleteAlias({ aliasName: r.AliasName }))),
  ListAliases: op(shape({ KeyId: str, Limit: int, Marker: str }), async (s, r) =>
    listAliasesResponse(await s.listAliases({ keyId: r.KeyId, limit: r.Limit, marker: r.Marker }), AWS_JSON),
  ),
  EnableKey: op(shape({ KeyId: str }), async (s, r) => done(s.enableKey({ keyId: r.KeyId }))),
  DisableKey: op(shape({ KeyId: str }), async (s, r) => done(s.disableKey({ keyId: r.KeyId }))),
  ScheduleKeyDeletion: op(shape({ KeyId: str, PendingWindowInDays: int }), async (s, r) =>
    scheduleKeyDeletionResponse(await s.scheduleKeyDeletion({ keyId: r.KeyId, pendingWindowInDays: r.PendingWindowInDays }), AWS_JSON),
  ),
  CancelKeyDeletion: op(shape({ KeyId: str }), async (s, r) => keyIdResponse(await s.cancelKeyDeletion({ keyId: r.KeyId }))),
  UpdateKeyDescription: op(shape({ KeyId: str, Description: str }), async (s, r) =>
    done(s.updateKeyDescription({ keyId: r.KeyId, description: r.Description })),
  ),
  TagResource: op(shape({ KeyId: str, Tags: tag.array() }), async (s, r) =>
    done(s.tagResource({ keyId: r.KeyId, tags: r.Tags?.map((t) => ({ tagKey: t.TagKey, tagValue: t.TagValue })) })),
  ),
  UntagResource: op(shape({ KeyId: str, TagKeys: strList }), async (s, r) => done(s.untagResource({ keyId: r.KeyId, tagKeys: r.TagKeys }))),
  ListResourceTags: op(shape({ KeyId: str, Limit: int, Marker: str }), async (s, r) =>
    listResourceTagsResponse(await s.listResourceTags({ keyId: r.KeyId, limit: r.Limit, marker: r.Marker })),
  ),
  EnableKeyRotation: op(shape({ KeyId: str, RotationPeriodInDays: int }), async (s, r) =>
    done(s.enableKeyRotation({ keyId: r.KeyId, rotationPeriodInDays: r.RotationPeriodInDays })),
  ),
  DisableKeyRotation: op(shape({ KeyId: str }), async (s, r) => done(s.disableKeyRotation({ keyId: r.KeyId }))),
  GetKeyRotationStatus: op(shape({ KeyId: str }), async (s, r) => getKeyRotationStatusResponse(await s.getKeyRotationStatus({ keyId: r.KeyId }), AWS_JSON)),
  RotateKeyOnDemand: op(shape({ KeyId: str }), async (s, r) => keyIdResponse(await s.rotateKeyOnDemand({ keyId: r.KeyId }))),
  ListKeyRotations: op(shape({ KeyId: str, Limit: int, Marker: str }), async (s, r) =>
    listKeyRotationsResponse(await s.listKeyRotations({ keyId: r.KeyId, limit: r.Limit, marker: r.Marker }), AWS_JSON),
  ),
  DescribeCustomKeyStores: op(shape({ CustomKeyStoreId: str, CustomKeyStoreName: str, Limit: int, Marker: str }), async (s, r) => {
    const res = await s.describeCustomKeyStores({
      customKeyStoreId: r.CustomKeyStoreId,
      customKeyStoreName: r.CustomKeyStoreName,
      limit: r.Limit,
      marker: r.Marker,
    });
    return describeCustomKeyStoresResponse({ ...res, customKeyStores: res.keyStores.map(keyStoreToProto) }, AWS_JSON);
  }),
  ConnectCustomKeyStore: op(shape({ CustomKeyStoreId: str }), async (s, r) =>
    done(s.connectCustomKeyStore({ customKeyStoreId: r.CustomKeyStoreId })),
  ),
  DisconnectCustomKeyStore: op(shape({ CustomKeyStoreId: str }), async (s, r) =>
    done(s.disconnectCustomKeyStore({ customKeyStoreId: r.CustomKeyStoreId })),
  ),
  GetParametersForImport: op(shape({ KeyId: str, WrappingAlgorithm: str, WrappingKeySpec: str }), async (s, r) => {
    const res = await s.getParametersForImport({ keyId: r.KeyId, wrappingAlgorithm: r.WrappingAlgorithm, wrappingKeySpec: r.WrappingKeySpec });
    return getParametersForImportResponse(res, AWS_JSON);
  }),
  ImportKeyMaterial: op(
    shape({ KeyId: str, ImportToken: blob, EncryptedKeyMaterial: blob, ExpirationModel: str, ValidTo: z.number(), ImportType: str, KeyMaterialDescription: str, KeyMaterialId: str }),
    async (s, r) => {
      if (r.ImportType !== undefined || r.KeyMaterialDescription !== undefined || r.KeyMaterialId !== undefined) {
        // Multiple key material versions (AWS 2025) are not supported: refused rather than ignored.
        throw new KmsError("UnsupportedOperationException", "ImportType, KeyMaterialDescription and KeyMaterialId are not supported by this service.");
      }
      return done(
        s.importKeyMaterial({
          keyId: r.KeyId,
          importToken: r.ImportToken,
          encryptedKeyMaterial: r.EncryptedKeyMaterial,
          expirationModel: r.ExpirationModel,
          validTo: r.ValidTo === undefined ? undefined : new Date(r.ValidTo * 1000),
        }),
      );
    },
  ),
  DeleteImportedKeyMaterial: op(shape({ KeyId: str, KeyMaterialId: str }), async (s, r) => {
    if (r.KeyMaterialId !== undefined) throw new KmsError("UnsupportedOperationException", "KeyMaterialId is not supported by this service.");
    return done(s.deleteImportedKeyMaterial({ keyId: r.KeyId }));
  }),

  // Authorization (docs/authorization.md): key policies and grants.
  PutKeyPolicy: op(shape({ KeyId: str, PolicyName: str, Policy: str, BypassPolicyLockoutSafetyCheck: bool }), async (s, r) =>
    done(s.putKeyPolicy({ keyId: r.KeyId, policyName: r.PolicyName, policy: r.Policy, bypassPolicyLockoutSafetyCheck: r.BypassPolicyLockoutSafetyCheck })),
  ),
  GetKeyPolicy: op(shape({ KeyId: str, PolicyName: str }), async (s, r) => getKeyPolicyResponse(await s.getKeyPolicy({ keyId: r.KeyId, policyName: r.PolicyName }))),
  ListKeyPolicies: op(shape({ KeyId: str, Limit: int, Marker: str }), async (s, r) =>
    listKeyPoliciesResponse(await s.listKeyPolicies({ keyId: r.KeyId, limit: r.Limit, marker: r.Marker })),
  ),
  CreateGrant: op(
    shape({
      KeyId: str,
      GranteePrincipal: str,
      RetiringPrincipal: str,
      Operations: strList,
      Constraints: z.object({ EncryptionContextSubset: stringMap.optional(), EncryptionContextEquals: stringMap.optional() }).strict(),
      GrantTokens: strList,
      Name: str,
      DryRun: bool,
    }),
    async (s, r) => {
      const res = await s.createGrant({
        keyId: r.KeyId,
        granteePrincipal: r.GranteePrincipal,
        retiringPrincipal: r.RetiringPrincipal,
        operations: r.Operations,
        constraints: r.Constraints && { encryptionContextSubset: r.Constraints.EncryptionContextSubset, encryptionContextEquals: r.Constraints.EncryptionContextEquals },
        grantTokens: r.GrantTokens,
        name: r.Name,
        dryRun: r.DryRun,
      });
      return createGrantResponse(res);
    },
  ),
  ListGrants: op(shape({ KeyId: str, Limit: int, Marker: str, GrantId: str, GranteePrincipal: str }), async (s, r) => {
    const res = await s.listGrants({ keyId: r.KeyId, limit: r.Limit, marker: r.Marker, grantId: r.GrantId, granteePrincipal: r.GranteePrincipal });
    return listGrantsResponse(res, AWS_JSON);
  }),
  ListRetirableGrants: op(shape({ RetiringPrincipal: str, Limit: int, Marker: str }), async (s, r) => {
    const res = await s.listRetirableGrants({ retiringPrincipal: r.RetiringPrincipal, limit: r.Limit, marker: r.Marker });
    return listGrantsResponse(res, AWS_JSON);
  }),
  RetireGrant: op(shape({ GrantToken: str, KeyId: str, GrantId: str, DryRun: bool }), async (s, r) =>
    done(s.retireGrant({ grantToken: r.GrantToken, keyId: r.KeyId, grantId: r.GrantId, dryRun: r.DryRun })),
  ),
  RevokeGrant: op(shape({ KeyId: str, GrantId: str, DryRun: bool }), async (s, r) => done(s.revokeGrant({ keyId: r.KeyId, grantId: r.GrantId, dryRun: r.DryRun }))),
};

/** Operations that answer with an empty body on success. */
async function done(p: Promise<void>): Promise<Record<string, never>> {
  await p;
  return {};
}
