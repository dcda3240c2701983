export { type CacheLimits, CachingMaterialsProvider } from "./cache.js";
export { type DecryptedHeader, type DecryptOptions, DecryptStream } from "./decrypt-stream.js";
export { type EncryptOptions, EncryptStream } from "./encrypt-stream.js";
export { Envelope, type EnvelopeOptions } from "./envelope.js";
export { EnvelopeError, type EnvelopeErrorCode } from "./errors.js";
export { DEFAULT_FRAME_LENGTH, type EncryptedDataKey, type Header, parseHeader } from "./header.js";
export { type KeyringKms, KmsKeyring, type KmsKeyringOptions, P11KMS_PROVIDER_ID } from "./keyring.js";
export type { DecryptionMaterials, EncryptionMaterials, MaterialsProvider } from "./materials.js";
