import { z } from "zod";
import { validation } from "../../kms/errors.js";
import { AwsProtocolError } from "./protocol-errors.js";

/**
 * Request decoding of the AWS KMS API (AWS JSON 1.1): PascalCase members, blobs as base64 strings. The codec
 * checks JSON types only; ranges and required members are the service's job, so both APIs give the same
 * ValidationException for the same mistake. Responses are shaped in responses/ (shared with the CLI).
 */

// A flat character-class test plus the length rule: as strict as the grouped form, and cheap on the hot path
// (the grouped regular expression showed up at ~3 % of the daemon's CPU for 4 KB plaintexts).
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;

export const blob = z.string().transform((s, ctx) => {
  if (s.length % 4 !== 0 || !BASE64_CHARS.test(s)) {
    ctx.addIssue({ code: "custom", message: "is not valid base64" });
    return z.NEVER;
  }
  return Buffer.from(s, "base64");
});

/**
 * A string→string map. Checked in place rather than rebuilt, so a member named "__proto__" (an own property
 * after JSON.parse) is kept as a key like any other and stays bound in the encryption context.
 */
export const stringMap = z.custom<Record<string, string>>(
  (v) =>
    typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string"),
  { message: "must be an object of string values" },
);

export const str = z.string();
export const int = z.number().int();
export const bool = z.boolean();
export const strList = z.array(z.string());

/** Builds a request schema: every member optional (the service says what is required), no unknown members. */
export function shape<T extends z.ZodRawShape>(members: T) {
  return z.object(members).partial().strict();
}

/** Decodes a request body with `schema`; unknown members are ValidationException, wrong types SerializationException. */
export function decode<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  if (issue.code === "unrecognized_keys") {
    throw validation(`Unknown member(s) in the request: ${issue.keys.join(", ")}.`);
  }
  const where = issue.path.join(".") || "request";
  throw new AwsProtocolError("SerializationException", `${where}: ${issue.message}`);
}
