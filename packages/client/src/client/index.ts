/** The typed gRPC client ({@link P11KmsClient}) and its errors, credentials and retry policy. */
export { type CallSettings, type KeyMetadata, P11KmsClient, type P11KmsClientOptions } from "./kms-client.js";
export { KmsClientError } from "./errors.js";
export { type Pem, type TlsOptions } from "./credentials.js";
export { backoffDelay, DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry.js";
export type * from "./types.js";
