import { b64, nonEmpty } from "./style.js";

/**
 * Responses of the cryptographic operations. None carries a timestamp, so the facade and the CLI render
 * them alike; the service's results and the ts-proto messages share these field names.
 */

type KeyId = { readonly keyId: string };

/** Encrypt. */
export function encryptResponse(res: KeyId & { readonly ciphertextBlob: Uint8Array; readonly encryptionAlgorithm: string }) {
  return { CiphertextBlob: b64(res.ciphertextBlob), KeyId: res.keyId, EncryptionAlgorithm: res.encryptionAlgorithm };
}

/** Decrypt. */
export function decryptResponse(res: KeyId & { readonly plaintext: Uint8Array; readonly encryptionAlgorithm: string }) {
  return { KeyId: res.keyId, Plaintext: b64(res.plaintext), EncryptionAlgorithm: res.encryptionAlgorithm };
}

/** ReEncrypt. */
export function reEncryptResponse(
  res: KeyId & { readonly ciphertextBlob: Uint8Array; readonly sourceKeyId: string; readonly sourceEncryptionAlgorithm: string; readonly destinationEncryptionAlgorithm: string },
) {
  return {
    CiphertextBlob: b64(res.ciphertextBlob),
    SourceKeyId: res.sourceKeyId,
    KeyId: res.keyId,
    SourceEncryptionAlgorithm: res.sourceEncryptionAlgorithm,
    DestinationEncryptionAlgorithm: res.destinationEncryptionAlgorithm,
  };
}

/** GenerateDataKey. */
export function generateDataKeyResponse(res: KeyId & { readonly ciphertextBlob: Uint8Array; readonly plaintext: Uint8Array }) {
  return { CiphertextBlob: b64(res.ciphertextBlob), Plaintext: b64(res.plaintext), KeyId: res.keyId };
}

/** GenerateDataKeyWithoutPlaintext. */
export function generateDataKeyWithoutPlaintextResponse(res: KeyId & { readonly ciphertextBlob: Uint8Array }) {
  return { CiphertextBlob: b64(res.ciphertextBlob), KeyId: res.keyId };
}

/** GenerateRandom. */
export function generateRandomResponse(res: { readonly plaintext: Uint8Array }) {
  return { Plaintext: b64(res.plaintext) };
}

/** GetPublicKey. */
export function getPublicKeyResponse(
  res: KeyId & { readonly publicKey: Uint8Array; readonly keySpec: string; readonly keyUsage: string; readonly encryptionAlgorithms: readonly string[]; readonly signingAlgorithms: readonly string[] },
) {
  return {
    KeyId: res.keyId,
    PublicKey: b64(res.publicKey),
    // Deprecated by AWS, always equal to KeySpec (as in KeyMetadata).
    CustomerMasterKeySpec: res.keySpec,
    KeySpec: res.keySpec,
    KeyUsage: res.keyUsage,
    ...nonEmpty("EncryptionAlgorithms", res.encryptionAlgorithms),
    ...nonEmpty("SigningAlgorithms", res.signingAlgorithms),
  };
}

/** Sign. */
export function signResponse(res: KeyId & { readonly signature: Uint8Array; readonly signingAlgorithm: string }) {
  return { KeyId: res.keyId, Signature: b64(res.signature), SigningAlgorithm: res.signingAlgorithm };
}

/** Verify (an invalid signature is an error, so SignatureValid is true whenever there is a response). */
export function verifyResponse(res: KeyId & { readonly signatureValid: boolean; readonly signingAlgorithm: string }) {
  return { KeyId: res.keyId, SignatureValid: res.signatureValid, SigningAlgorithm: res.signingAlgorithm };
}

/** GenerateMac. */
export function generateMacResponse(res: KeyId & { readonly mac: Uint8Array; readonly macAlgorithm: string }) {
  return { Mac: b64(res.mac), MacAlgorithm: res.macAlgorithm, KeyId: res.keyId };
}

/** VerifyMac (a wrong MAC is an error, as for Verify). */
export function verifyMacResponse(res: KeyId & { readonly macValid: boolean; readonly macAlgorithm: string }) {
  return { KeyId: res.keyId, MacValid: res.macValid, MacAlgorithm: res.macAlgorithm };
}

type DataKeyPair = KeyId & { readonly privateKeyCiphertextBlob: Uint8Array; readonly publicKey: Uint8Array; readonly keyPairSpec: string };

/** GenerateDataKeyPair. */
export function generateDataKeyPairResponse(res: DataKeyPair & { readonly privateKeyPlaintext: Uint8Array }) {
  return {
    PrivateKeyCiphertextBlob: b64(res.privateKeyCiphertextBlob),
    PrivateKeyPlaintext: b64(res.privateKeyPlaintext),
    PublicKey: b64(res.publicKey),
    KeyId: res.keyId,
    KeyPairSpec: res.keyPairSpec,
  };
}

/** GenerateDataKeyPairWithoutPlaintext. */
export function generateDataKeyPairWithoutPlaintextResponse(res: DataKeyPair) {
  return { PrivateKeyCiphertextBlob: b64(res.privateKeyCiphertextBlob), PublicKey: b64(res.publicKey), KeyId: res.keyId, KeyPairSpec: res.keyPairSpec };
}
