/**
 * @p11kms/client: a typed gRPC client for the p11kms daemon ({@link P11KmsClient}) and envelope encryption
 * of data of any size ({@link Envelope}). The envelope SDK uses the client; the client knows nothing of it.
 */
export * from "./client/index.js";
export * from "./envelope/index.js";
export { GRPC_ERROR_TYPE_KEY, encodeEncryptionContext } from "./contract.js";
