import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collect, parseBlob, parseContext, parseIntArg, parseTag } from "../../src/cli/args.js";
import { thrown } from "../helpers/thrown.js";

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "p11kms-cli-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}


function expectInvalidArgument(fn: () => unknown, message: string): void {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(InvalidArgumentError);
  expect((err as InvalidArgumentError).message).toBe(message);
}

const NOT_BASE64 = "expected base64, or fileb://<path> for raw bytes";

describe("parseBlob", () => {
  it("decodes inline base64", () => {
    expect(parseBlob("aGVsbG8=").toString("utf8")).toBe("hello");
    expect(parseBlob("AAEC/w==").toString("hex")).toBe("000102ff");
    expect(parseBlob("+/+/").toString("hex")).toBe("fbffbf");
    expect(parseBlob("").length).toBe(0);
  });

  it("reads fileb:// as raw bytes, without decoding or trimming", () => {
    const raw = Buffer.from([0x00, 0xff, 0x0a, 0x41, 0x3d, 0x0a]);
    const p = file("raw.bin", raw);
    expect(parseBlob(`fileb://${p}`).toString("hex")).toBe("00ff0a413d0a");
  });

  it("reads fileb:// of a file that happens to hold base64 text as those bytes", () => {
    const p = file("looks-b64.bin", "aGVsbG8=");
    expect(parseBlob(`fileb://${p}`).toString("utf8")).toBe("aGVsbG8=");
  });

  it("reads file:// as base64 text, trimming surrounding whitespace", () => {
    const p = file("blob.b64", "  aGVsbG8gd29ybGQ=\n");
    expect(parseBlob(`file://${p}`).toString("utf8")).toBe("hello world");
  });

  it("refuses file:// whose content is not base64", () => {
    const p = file("not-b64.txt", "hello world\n");
    expectInvalidArgument(() => parseBlob(`file://${p}`), NOT_BASE64);
  });

  it.each([
    ["wrong length", "aGVsbG8"],
    ["characters outside the alphabet", "aGVs*G8="],
    ["URL-safe alphabet", "-_-_"],
    ["inner whitespace", "aGVs bG8="],
    ["padding in the middle", "aG=sbG8="],
    ["too much padding", "aGVsbA==="],
    ["a plain path", "/tmp/blob"],
  ])("refuses inline %s", (_what, value) => {
    expectInvalidArgument(() => parseBlob(value), NOT_BASE64);
  });

  it.each(["fileb://", "file://"])("reports a missing %s file with its errno code", (scheme) => {
    const p = join(dir, "missing");
    expectInvalidArgument(() => parseBlob(`${scheme}${p}`), `cannot read ${p}: ENOENT`);
  });
});

describe("parseContext", () => {
  it("parses k=v,k2=v2", () => {
    expect(parseContext("purpose=test,dept=10")).toEqual({ purpose: "test", dept: "10" });
  });

  it("keeps everything after the first '=' as the value, and allows an empty value", () => {
    expect(parseContext("k=a=b,e=")).toEqual({ k: "a=b", e: "" });
  });

  it("parses the JSON form", () => {
    expect(parseContext('{"purpose":"test","a,b":"c=d"}')).toEqual({ purpose: "test", "a,b": "c=d" });
    expect(parseContext("{}")).toEqual({});
  });

  it("reads either form from file://", () => {
    expect(parseContext(`file://${file("ctx.json", '{"k":"v"}\n')}`)).toEqual({ k: "v" });
    expect(parseContext(`file://${file("ctx.txt", "a=1,b=2\n")}`)).toEqual({ a: "1", b: "2" });
  });

  it.each([
    ["a pair without '='", "k", "expected key=value, got 'k'"],
    ["an empty key", "=v", "expected key=value, got '=v'"],
    ["a trailing comma", "a=1,", "expected key=value, got ''"],
    ["an empty string", "", "expected key=value, got ''"],
    ["a JSON array", '["a"]', "expected key=value, got '[\"a\"]'"],
    ["malformed JSON", '{"k":', "malformed JSON encryption context"],
    ["a non-string JSON value", '{"k":1}', "context values must be strings"],
    ["a null JSON value", '{"k":null}', "context values must be strings"],
    ["a nested JSON object", '{"k":{"x":"y"}}', "context values must be strings"],
  ])("refuses %s", (_what, value, message) => {
    expectInvalidArgument(() => parseContext(value), message);
  });

  // BUG: in the k=v form the pairs are assigned onto a plain object literal (`out[key] = value`), so the key
  // "__proto__" hits the Object.prototype setter and the pair is silently dropped: "__proto__=x" yields {}
  // (the JSON form keeps it as an own property). The CLI then sends a different encryption context than the
  // one typed, with no error. Marked it.fails so the suite stays green; remove .fails once fixed.
  it("keeps a '__proto__' key in the k=v form, as the JSON form does", () => {
    expect(Object.keys(parseContext('{"__proto__":"x"}'))).toEqual(["__proto__"]);
    expect(Object.keys(parseContext("__proto__=x"))).toEqual(["__proto__"]);
  });
});

describe("parseTag", () => {
  it("parses the shorthand form", () => {
    expect(parseTag("TagKey=env,TagValue=prod")).toEqual([{ tagKey: "env", tagValue: "prod" }]);
    expect(parseTag("TagValue=prod,TagKey=env")).toEqual([{ tagKey: "env", tagValue: "prod" }]);
    expect(parseTag("TagKey=k,TagValue=")).toEqual([{ tagKey: "k", tagValue: "" }]);
    expect(parseTag("TagKey=k,TagValue=a=b")).toEqual([{ tagKey: "k", tagValue: "a=b" }]);
  });

  it("parses the JSON list form", () => {
    expect(parseTag('[{"TagKey":"a","TagValue":"1"},{"TagKey":"b","TagValue":""}]')).toEqual([
      { tagKey: "a", tagValue: "1" },
      { tagKey: "b", tagValue: "" },
    ]);
    expect(parseTag("[]")).toEqual([]);
  });

  it("appends to the tags of earlier occurrences (repeatable option)", () => {
    const first = parseTag("TagKey=a,TagValue=1");
    const second = parseTag('[{"TagKey":"b","TagValue":"2"}]', first);
    expect(parseTag("TagKey=c,TagValue=3", second)).toEqual([
      { tagKey: "a", tagValue: "1" },
      { tagKey: "b", tagValue: "2" },
      { tagKey: "c", tagValue: "3" },
    ]);
    expect(first).toEqual([{ tagKey: "a", tagValue: "1" }]); // not mutated
  });

  it.each([
    ["missing TagValue", "TagKey=k", "expected TagKey=<key>,TagValue=<value>"],
    ["missing TagKey", "TagValue=v", "expected TagKey=<key>,TagValue=<value>"],
    ["TagValue without '='", "TagKey=k,TagValue", "expected TagKey=<key>,TagValue=<value>"],
    ["lower-case field names", "tagkey=k,tagvalue=v", "expected TagKey=<key>,TagValue=<value>"],
    ["malformed JSON", '[{"TagKey":', "malformed JSON tag list"],
    ["a JSON entry without TagValue", '[{"TagKey":"k"}]', "each tag needs string TagKey and TagValue"],
    ["a JSON entry with a numeric value", '[{"TagKey":"k","TagValue":1}]', "each tag needs string TagKey and TagValue"],
    ["a JSON null entry", "[null]", "each tag needs string TagKey and TagValue"],
  ])("refuses %s", (_what, value, message) => {
    expectInvalidArgument(() => parseTag(value), message);
  });
});

describe("parseIntArg and collect", () => {
  it("parses integers and refuses anything else", () => {
    expect(parseIntArg("30")).toBe(30);
    expect(parseIntArg("-7")).toBe(-7);
    for (const v of ["", "1.5", "1e3", " 1", "0x10", "seven"]) expectInvalidArgument(() => parseIntArg(v), "expected an integer");
  });

  it("collects repeated values in order", () => {
    expect(collect("b", collect("a"))).toEqual(["a", "b"]);
  });
});

describe("parseBlob: wrapped base64 in a file", () => {
  it("accepts base64 wrapped over lines, as coreutils base64 writes it", () => {
    const data = Buffer.alloc(100, 0xab);
    const wrapped = data.toString("base64").replace(/(.{76})/g, "$1\n");
    writeFileSync(join(dir, "b64.txt"), `${wrapped}\n`);
    expect(wrapped).toContain("\n");
    expect(parseBlob(`file://${join(dir, "b64.txt")}`).equals(data)).toBe(true);
  });
});
