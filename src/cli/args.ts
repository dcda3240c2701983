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
  // base64 in a file may be wrapped over lines (coreutils base64 wraps at 76 columns): drop the whitespace.
  const text = value.startsWith("file://") ? readArgFile(value.slice(7)).toString("utf8").replace(/\s+/g, "") : value;
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
  // Object.fromEntries defines own properties, so a key named "__proto__" is kept like any other.
  return Object.fromEntries(
    text.split(",").map((pair) => {
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got '${pair}'`);
      return [pair.slice(0, eq), pair.slice(eq + 1)];
    }),
  );
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
