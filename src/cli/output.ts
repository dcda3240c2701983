import jmespath from "jmespath";
import type { ResponseStyle } from "../api/aws/responses/style.js";

/**
 * The CLI renders the AWS facade's response shapes (src/api/aws/responses/) from the gRPC messages, so
 * scripts written for `aws kms` read p11kms output unchanged: PascalCase names, blobs in base64, dates in
 * ISO 8601 (as the AWS CLI prints them), plus p11kms's extension members for the operator.
 */
export const CLI_STYLE: ResponseStyle = { date: (d) => d.toISOString(), extensions: true };

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
