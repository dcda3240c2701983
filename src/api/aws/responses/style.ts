/**
 * What every AWS response shape shares: PascalCase members named as in the AWS KMS model (botocore's
 * kms service-2.json), blobs as base64, absent members left out — and the one thing the AWS facade and the
 * CLI render differently, passed in as a {@link ResponseStyle} instead of writing each shape twice.
 */

/**
 * How one consumer renders a response. The shapes take their input structurally, so the facade hands them
 * the service's domain results and the CLI the ts-proto messages it receives over gRPC (same field names).
 */
export interface ResponseStyle {
  /** A timestamp: epoch seconds on the AWS JSON 1.1 wire, an ISO-8601 string in the CLI (as the AWS CLI prints dates). */
  readonly date: (d: Date) => number | string;
  /**
   * Whether to add p11kms's extension members (P11kmsRsaOaepSha256Decryption, ConnectionErrorReason). The CLI
   * shows them to the operator (docs/asymmetric-keys.md, docs/key-lifecycle.md); the facade sends only members
   * of the AWS model, so AWS SDKs and the AWS CLI see exactly AWS's shapes.
   */
  readonly extensions: boolean;
}

/** The AWS facade's style: AWS JSON 1.1 timestamps are (fractional) epoch seconds; AWS members only. */
export const AWS_JSON: ResponseStyle = { date: (d) => d.getTime() / 1000, extensions: false };

/** A blob as AWS JSON carries it. */
export const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");

/**
 * A timestamp in `style`. Undefined stays undefined (and JSON leaves the member out): a proto3 Timestamp the
 * server did not set arrives as undefined, where the domain always has a Date.
 */
export function timestamp(d: Date | undefined, style: ResponseStyle): number | string | undefined {
  return d === undefined ? undefined : style.date(d);
}

/** `{ [name]: list }` only when the list has entries: AWS lists only the algorithm families a key has. */
export function nonEmpty(name: string, list: readonly string[]): Record<string, readonly string[]> {
  return list.length > 0 ? { [name]: list } : {};
}

/** One page of a list operation, as the service (nextMarker absent) and gRPC (nextMarker "") return it. */
export interface PageFields {
  readonly truncated: boolean;
  readonly nextMarker?: string | undefined;
}

/** NextMarker and Truncated of a list response, as AWS sends them: NextMarker only when truncated. */
export function page(res: PageFields): { NextMarker?: string | undefined; Truncated: boolean } {
  return { ...(res.truncated ? { NextMarker: res.nextMarker } : {}), Truncated: res.truncated };
}
