import { readFileSync } from "node:fs";
import { InvalidArgumentError } from "commander";

/**
 * Argument forms shared with the AWS CLI, so commands can be copied between the two:
 *   blobs      fileb://path (raw bytes), file://path (base64 text in a file), or base64 inline
 *   contexts   k=v,k2=v2  or  {"k":"v"}  (or file://path holding either)
 *   tags       TagKey=k,TagValue=v ...  or  [{"TagKey":"k","TagValue":"v"}]
 */
export function parseBlob(value: string): Buffer {
  if (value.startsWith("fileb://")) return readArgFile(value.slice(8));
  const text = value.startsWith("file://") ? readArgFile(value.slice(7)).toString("utf8").trim() : value;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw new InvalidArgumentError("expected base64, or fileb://<path> for raw bytes");
  }
  return Buffer.from(text, "base64");
}

export function parseContext(value: string): Record<string, string> {
  const text = value.startsWith("file://") ? readArgFile(value.slice(7)).toString("utf8").trim() : value;
  if (text.startsWith("{")) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      throw new InvalidArgumentError("malformed JSON encryption context");
    }
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new InvalidArgumentError("expected a JSON object");
    for (const v of Object.values(obj)) if (typeof v !== "string") throw new InvalidArgumentError("context values must be strings");
    return obj as Record<string, string>;
  }
  const out: Record<string, string> = {};
  for (const pair of text.split(",")) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got '${pair}'`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

export interface CliTag {
  tagKey: string;
  tagValue: string;
}

export function parseTag(value: string, previous: CliTag[] = []): CliTag[] {
  if (value.startsWith("[")) {
    let arr: unknown;
    try {
      arr = JSON.parse(value);
    } catch {
      throw new InvalidArgumentError("malformed JSON tag list");
    }
    if (!Array.isArray(arr)) throw new InvalidArgumentError("expected a JSON array of tags");
    return [
      ...previous,
      ...arr.map((t: { TagKey?: unknown; TagValue?: unknown }) => {
        if (typeof t?.TagKey !== "string" || typeof t?.TagValue !== "string") {
          throw new InvalidArgumentError("each tag needs string TagKey and TagValue");
        }
        return { tagKey: t.TagKey, tagValue: t.TagValue };
      }),
    ];
  }
  const fields = Object.fromEntries(
    value.split(",").map((f) => {
      const eq = f.indexOf("=");
      return eq < 0 ? [f, undefined] : [f.slice(0, eq), f.slice(eq + 1)];
    }),
  );
  if (typeof fields.TagKey !== "string" || typeof fields.TagValue !== "string") {
    throw new InvalidArgumentError("expected TagKey=<key>,TagValue=<value>");
  }
  return [...previous, { tagKey: fields.TagKey, tagValue: fields.TagValue }];
}

export function parseIntArg(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError("expected an integer");
  return Number(value);
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function readArgFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new InvalidArgumentError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
}
