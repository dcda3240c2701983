import jmespath from "jmespath";
import type { KeyMetadata } from "../gen/p11kms/v1/kms.js";

/**
 * Output in the shapes the AWS CLI prints (PascalCase names, blobs in base64, ISO dates), so scripts
 * written for `aws kms` read p11kms output unchanged.
 */
export function awsKeyMetadata(m: KeyMetadata | undefined): Record<string, unknown> | undefined {
  if (!m) return undefined;
  return {
    AWSAccountId: m.awsAccountId,
    KeyId: m.keyId,
    Arn: m.arn,
    CreationDate: m.creationDate?.toISOString(),
    Enabled: m.enabled,
    Description: m.description,
    KeyUsage: m.keyUsage,
    KeyState: m.keyState,
    ...(m.deletionDate ? { DeletionDate: m.deletionDate.toISOString() } : {}),
    Origin: m.origin,
    KeyManager: m.keyManager,
    CustomerMasterKeySpec: m.customerMasterKeySpec,
    KeySpec: m.keySpec,
    // As the AWS CLI prints them: each algorithm list only for the keys it applies to.
    ...(m.encryptionAlgorithms.length ? { EncryptionAlgorithms: m.encryptionAlgorithms } : {}),
    ...(m.signingAlgorithms.length ? { SigningAlgorithms: m.signingAlgorithms } : {}),
    ...(m.macAlgorithms.length ? { MacAlgorithms: m.macAlgorithms } : {}),
    ...(m.expirationModel ? { ExpirationModel: m.expirationModel } : {}),
    ...(m.validTo ? { ValidTo: m.validTo.toISOString() } : {}),
    MultiRegion: m.multiRegion,
    ...(m.rsaOaepSha256Decryption ? { P11kmsRsaOaepSha256Decryption: m.rsaOaepSha256Decryption } : {}),
  };
}

export function b64(buf: Uint8Array): string {
  return Buffer.from(buf).toString("base64");
}

/** Prints `value` as JSON, or as the AWS CLI's text format, after an optional JMESPath --query. */
export function print(value: unknown, opts: { output: string; query?: string | undefined }): void {
  if (value === undefined) return; // operations without a result print nothing, as the AWS CLI
  const selected = opts.query ? jmespath.search(value, opts.query) : value;
  if (opts.output === "text") process.stdout.write(`${toText(selected)}\n`);
  else process.stdout.write(`${JSON.stringify(selected, null, 4)}\n`);
}

function toText(v: unknown): string {
  if (v === null || v === undefined) return "None";
  if (Array.isArray(v)) return v.map((x) => (typeof x === "object" && x !== null ? toText(x) : String(x))).join("\t");
  if (typeof v === "object") return Object.values(v).map((x) => toText(x)).join("\t");
  return String(v);
}
