import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Structured JSON logs. Redaction is a second line of defence: code never passes secrets to the logger, but
 * if a request object ever reaches it, these fields are censored rather than written.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "p11kms" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: [
          "pin",
          "*.pin",
          "plaintext",
          "*.plaintext",
          "Plaintext",
          "*.Plaintext",
          "ciphertextBlob",
          "*.ciphertextBlob",
          "CiphertextBlob",
          "*.CiphertextBlob",
          "secretAccessKey",
          "*.secretAccessKey",
        ],
        censor: "[REDACTED]",
      },
    },
    destination,
  );
}
