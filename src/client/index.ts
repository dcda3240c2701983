/**
 * The p11kms client SDK: a typed gRPC client ({@link P11KmsClient}) and envelope encryption of data of any
 * size ({@link Envelope}). Import from "p11kms" (or "p11kms/client").
 */
export { type CallSettings, type KeyMetadata, P11KmsClient, type P11KmsClientOptions } from "./kms-client.js";
export { KmsClientError } from "./errors.js";
export { type Pem, type TlsOptions } from "./credentials.js";
export { backoffDelay, DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry.js";
export type * from "./types.js";
export * from "../envelope/index.js";
