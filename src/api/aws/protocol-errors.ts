/**
 * Errors of the AWS JSON 1.1 wire itself — authentication, routing, body decoding — as opposed to the
 * domain's KmsError. AWS answers all of them with HTTP 400 and `{"__type", "message"}`, like domain errors.
 */
export const PROTOCOL_ERROR_TYPES = [
  "MissingAuthenticationTokenException",
  "UnrecognizedClientException",
  "InvalidSignatureException",
  "IncompleteSignatureException",
  "UnknownOperationException",
  "SerializationException",
  "RequestEntityTooLargeException",
] as const;
export type ProtocolErrorType = (typeof PROTOCOL_ERROR_TYPES)[number];

export class AwsProtocolError extends Error {
  override readonly name = "AwsProtocolError";
  constructor(
    readonly type: ProtocolErrorType,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}
