import type { KmsService } from "../../src/kms/service.js";

/**
 * Canned results of every KmsService operation that answers with a body, typed as the service returns
 * them: "full" sets every optional member (dates with milliseconds, truncated pages, constraints, a failed
 * key store), "sparse" leaves them out, so a response shape is exercised with each member present and absent.
 */
type Results = { [K in keyof KmsService]?: KmsService[K] extends (...args: never[]) => Promise<infer R> ? R : never };

const ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const ID = "1234abcd-12ab-34cd-56ef-1234567890ab";
const T1 = new Date("2024-03-05T06:07:08.123Z");
const T2 = new Date("2025-11-30T23:59:59.5Z");
const bytes = (s: string) => Buffer.from(s);

function results(full: boolean): Results {
  const page = full ? { truncated: true, nextMarker: "next-page" } : { truncated: false };
  const metadata = {
    awsAccountId: "111122223333",
    keyId: ID,
    arn: ARN,
    creationDate: T1,
    enabled: !full,
    description: full ? "a key" : "",
    keyUsage: full ? ("ENCRYPT_DECRYPT" as const) : ("SIGN_VERIFY" as const),
    keyState: full ? ("PendingDeletion" as const) : ("Enabled" as const),
    deletionDate: full ? T2 : undefined,
    origin: full ? ("EXTERNAL" as const) : ("AWS_KMS" as const),
    keyManager: "CUSTOMER" as const,
    keySpec: full ? ("RSA_2048" as const) : ("ECC_NIST_P256" as const),
    encryptionAlgorithms: full ? (["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"] as const) : [],
    signingAlgorithms: full ? [] : (["ECDSA_SHA_256"] as const),
    macAlgorithms: full ? (["HMAC_SHA_256"] as const) : [],
    customKeyStoreId: full ? "default" : undefined,
    expirationModel: full ? ("KEY_MATERIAL_EXPIRES" as const) : undefined,
    validTo: full ? T2 : undefined,
    rsaOaepSha256Decryption: full ? ("fallback" as const) : undefined,
  };
  const grant = {
    keyId: ARN,
    grantId: "a".repeat(64),
    name: full ? "g" : undefined,
    creationDate: T1,
    granteePrincipal: "arn:aws:iam::111122223333:user/alice",
    retiringPrincipal: full ? "arn:aws:iam::111122223333:root" : undefined,
    issuingAccount: "arn:aws:iam::111122223333:root",
    operations: ["Encrypt", "Decrypt"],
    constraints: full ? { encryptionContextSubset: { app: "web" }, encryptionContextEquals: Object.fromEntries([["__proto__", "kept"], ["env", "prod"]]) } : undefined,
  };
  return {
    createKey: metadata,
    describeKey: metadata,
    listKeys: { keys: [{ keyId: ID, keyArn: ARN }], ...page },
    encrypt: { ciphertextBlob: bytes("ct"), keyId: ARN, encryptionAlgorithm: "SYMMETRIC_DEFAULT" },
    decrypt: { keyId: ARN, plaintext: bytes("pt"), encryptionAlgorithm: "RSAES_OAEP_SHA_256" },
    reEncrypt: { ciphertextBlob: bytes("ct2"), sourceKeyId: ARN, keyId: `${ARN}-2`, sourceEncryptionAlgorithm: "SYMMETRIC_DEFAULT", destinationEncryptionAlgorithm: "RSAES_OAEP_SHA_1" },
    generateDataKey: { ciphertextBlob: bytes("dk-ct"), plaintext: bytes("dk-pt"), keyId: ARN },
    generateDataKeyWithoutPlaintext: { ciphertextBlob: bytes("dk-ct"), keyId: ARN },
    generateRandom: { plaintext: bytes("random") },
    getPublicKey: {
      keyId: ARN,
      publicKey: bytes("spki"),
      keySpec: metadata.keySpec,
      keyUsage: metadata.keyUsage,
      encryptionAlgorithms: [...metadata.encryptionAlgorithms],
      signingAlgorithms: [...metadata.signingAlgorithms],
    },
    sign: { keyId: ARN, signature: bytes("sig"), signingAlgorithm: "ECDSA_SHA_256" },
    verify: { keyId: ARN, signatureValid: true, signingAlgorithm: "ECDSA_SHA_256" },
    generateMac: { mac: bytes("mac"), macAlgorithm: "HMAC_SHA_256", keyId: ARN },
    verifyMac: { keyId: ARN, macValid: true, macAlgorithm: "HMAC_SHA_256" },
    generateDataKeyPair: { privateKeyCiphertextBlob: bytes("priv-ct"), privateKeyPlaintext: bytes("priv"), publicKey: bytes("pub"), keyId: ARN, keyPairSpec: "RSA_2048" },
    generateDataKeyPairWithoutPlaintext: { privateKeyCiphertextBlob: bytes("priv-ct"), publicKey: bytes("pub"), keyId: ARN, keyPairSpec: "ECC_NIST_P256" },
    listAliases: {
      aliases: full ? [{ aliasName: "alias/app", aliasArn: "arn:aws:kms:us-east-1:111122223333:alias/app", targetKeyId: ID, creationDate: T1, lastUpdatedDate: T2 }] : [],
      ...page,
    },
    scheduleKeyDeletion: { keyId: ARN, deletionDate: T2, keyState: "PendingDeletion", pendingWindowInDays: 7 },
    cancelKeyDeletion: { keyId: ARN },
    listResourceTags: { tags: full ? [{ tagKey: "team", tagValue: "" }] : [], ...page },
    getKeyRotationStatus: full ? { keyRotationEnabled: true, keyId: ARN, rotationPeriodInDays: 180, nextRotationDate: T2 } : { keyRotationEnabled: false, keyId: ARN },
    rotateKeyOnDemand: { keyId: ARN },
    listKeyRotations: { rotations: full ? [{ keyId: ARN, rotationDate: T1, rotationType: "ON_DEMAND" }] : [], ...page },
    describeCustomKeyStores: {
      keyStores: [
        full
          ? { keyStoreId: "hsm-b", connectionState: "FAILED", failure: { code: "USER_LOCKED_OUT", reason: "CKR_PIN_LOCKED" }, creationDate: T1 }
          : { keyStoreId: "default", connectionState: "CONNECTED", creationDate: T1 },
      ],
      ...page,
    },
    getParametersForImport: { keyId: ARN, importToken: bytes("token"), publicKey: bytes("wrapping"), parametersValidTo: T2 },
    getKeyPolicy: { policy: '{"Version":"2012-10-17"}', policyName: "default" },
    listKeyPolicies: { policyNames: ["default"], ...page },
    createGrant: { grantToken: "grant-token", grantId: grant.grantId },
    listGrants: { grants: [grant], ...page },
    listRetirableGrants: { grants: full ? [grant] : [], ...page },
  };
}

/** The two variants, by name. */
export const FIXTURES = { full: results(true), sparse: results(false) } as const;
export type FixtureName = keyof typeof FIXTURES;

/**
 * A stand-in KmsService (and CallerScopedService) answering every operation from `fixtures`; operations
 * without a body resolve to undefined, as the service's do.
 */
export function fixtureService(fixtures: Results): KmsService {
  const service: Record<string, unknown> = new Proxy(
    {},
    {
      get: (_, name: string) => (name === "as" ? () => service : async () => (fixtures as Record<string, unknown>)[name]),
    },
  );
  return service as unknown as KmsService;
}
