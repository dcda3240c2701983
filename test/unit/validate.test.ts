import { describe, expect, it } from "vitest";
import {
  MAX_GRANT_TOKENS,
  MAX_TAGS,
  optionalEnum,
  optionalInt,
  requireBytes,
  requireString,
  validateGrantTokens,
  validateTags,
} from "../../src/kms/validate.js";
import type { Tag } from "../../src/kms/types.js";
import { expectKmsError } from "../helpers/thrown.js";



describe("requireBytes", () => {
  it("returns the bytes as a Buffer over the same memory", () => {
    const backing = new Uint8Array([9, 1, 2, 3, 9]);
    const view = backing.subarray(1, 4);
    const out = requireBytes("Plaintext", view, 1, 4096);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect([...out]).toEqual([1, 2, 3]);
    backing[2] = 42;
    expect(out[1]).toBe(42);
  });

  it.each([undefined, new Uint8Array(0)])("refuses a missing or empty required value (%s)", (v) => {
    expectKmsError(() => requireBytes("Plaintext", v, 1, 4096), "ValidationException", "Plaintext is required and must not be empty.");
  });

  it("returns an empty Buffer for a missing optional value", () => {
    const out = requireBytes("AdditionalData", undefined, 0, 10);
    expect(Buffer.isBuffer(out)).toBe(true);
    expect(out.length).toBe(0);
  });

  it("accepts both bounds and refuses one past them", () => {
    expect(requireBytes("B", new Uint8Array(2), 2, 4).length).toBe(2);
    expect(requireBytes("B", new Uint8Array(4), 2, 4).length).toBe(4);
    expectKmsError(() => requireBytes("B", new Uint8Array(1), 2, 4), "ValidationException", "B must be between 2 and 4 bytes long; got 1.");
    expectKmsError(() => requireBytes("B", new Uint8Array(5), 2, 4), "ValidationException", "B must be between 2 and 4 bytes long; got 5.");
  });
});

describe("requireString", () => {
  it("returns the value within bounds", () => {
    expect(requireString("Description", "abc", 1, 3)).toBe("abc");
  });

  it.each([undefined, ""])("refuses a missing required value (%j)", (v) => {
    expectKmsError(() => requireString("KeyId", v, 1, 2048), "ValidationException", "KeyId is required.");
  });

  it.each([undefined, ""])("returns '' for a missing optional value (%j)", (v) => {
    expect(requireString("Description", v, 0, 8192)).toBe("");
  });

  it("refuses values outside the bounds with a message naming the field", () => {
    expectKmsError(() => requireString("Description", "abcd", 0, 3), "ValidationException", "Description must be between 0 and 3 characters long.");
    expectKmsError(() => requireString("X", "a", 2, 3), "ValidationException", "X must be between 2 and 3 characters long.");
  });
});

describe("optionalInt", () => {
  it("passes undefined and in-range integers through", () => {
    expect(optionalInt("PendingWindowInDays", undefined, 7, 30)).toBeUndefined();
    expect(optionalInt("PendingWindowInDays", 7, 7, 30)).toBe(7);
    expect(optionalInt("PendingWindowInDays", 30, 7, 30)).toBe(30);
  });

  it.each([6, 31, 7.5, Number.NaN, Number.POSITIVE_INFINITY])("refuses %s", (v) => {
    expectKmsError(
      () => optionalInt("PendingWindowInDays", v, 7, 30),
      "ValidationException",
      `PendingWindowInDays must be an integer from 7 to 30; got ${v}.`,
    );
  });
});

describe("optionalEnum", () => {
  const allowed = ["AES_256", "AES_128"] as const;

  it("treats undefined and '' as absent", () => {
    expect(optionalEnum("KeySpec", undefined, allowed)).toBeUndefined();
    expect(optionalEnum("KeySpec", "", allowed)).toBeUndefined();
  });

  it("returns an allowed value", () => {
    expect(optionalEnum("KeySpec", "AES_128", allowed)).toBe("AES_128");
  });

  it.each(["AES_512", "aes_256", " AES_256"])("refuses %j and lists the allowed values", (v) => {
    expectKmsError(() => optionalEnum("KeySpec", v, allowed), "ValidationException", `KeySpec '${v}' is not one of: AES_256, AES_128.`);
  });
});

describe("validateGrantTokens", () => {
  it("accepts undefined, none and up to 10 tokens", () => {
    expect(MAX_GRANT_TOKENS).toBe(10);
    expect(validateGrantTokens(undefined)).toBeUndefined();
    expect(validateGrantTokens([])).toBeUndefined();
    expect(validateGrantTokens(Array.from({ length: 10 }, (_, i) => `t${i}`))).toBeUndefined();
    expect(validateGrantTokens(["x".repeat(8192)])).toBeUndefined();
  });

  it("refuses 11 tokens", () => {
    expectKmsError(
      () => validateGrantTokens(Array.from({ length: 11 }, (_, i) => `t${i}`)),
      "ValidationException",
      "GrantTokens can hold at most 10 tokens.",
    );
  });

  it("refuses an empty or oversized token", () => {
    expectKmsError(() => validateGrantTokens(["ok", ""]), "ValidationException", "GrantTokens member is required.");
    expectKmsError(
      () => validateGrantTokens(["x".repeat(8193)]),
      "ValidationException",
      "GrantTokens member must be between 1 and 8192 characters long.",
    );
  });
});

describe("validateTags", () => {
  const tag = (tagKey: string, tagValue = ""): Tag => ({ tagKey, tagValue });

  it("returns [] for no tags", () => {
    expect(MAX_TAGS).toBe(50);
    expect(validateTags(undefined)).toEqual([]);
    expect(validateTags([])).toEqual([]);
  });

  it("returns copies that carry only tagKey and tagValue", () => {
    const input = [{ tagKey: "env", tagValue: "prod", extra: 1 } as Tag, tag("k".repeat(128), "v".repeat(256))];
    expect(validateTags(input)).toEqual([
      { tagKey: "env", tagValue: "prod" },
      { tagKey: "k".repeat(128), tagValue: "v".repeat(256) },
    ]);
  });

  it("accepts 50 tags and refuses 51", () => {
    expect(validateTags(Array.from({ length: 50 }, (_, i) => tag(`k${i}`))).length).toBe(50);
    expectKmsError(() => validateTags(Array.from({ length: 51 }, (_, i) => tag(`k${i}`))), "TagException", "A key can have at most 50 tags.");
  });

  it.each(["", "k".repeat(129)])("refuses a tag key of length %#", (k) => {
    expectKmsError(() => validateTags([tag(k)]), "TagException", "TagKey must be 1 to 128 characters long.");
  });

  it("refuses a tag value over 256 characters or not a string", () => {
    expectKmsError(() => validateTags([tag("k", "v".repeat(257))]), "TagException", "TagValue must be 0 to 256 characters long.");
    expectKmsError(
      () => validateTags([{ tagKey: "k" } as unknown as Tag]),
      "TagException",
      "TagValue must be 0 to 256 characters long.",
    );
  });

  it.each(["aws:foo", "AWS:foo", "Aws:"])("refuses the reserved prefix in %j", (k) => {
    expectKmsError(() => validateTags([tag(k)]), "TagException", "Tag keys beginning with 'aws:' are reserved.");
  });

  it("allows 'aws' without the colon", () => {
    expect(validateTags([tag("awsome")])).toEqual([tag("awsome")]);
  });

  it("refuses duplicate keys (case-sensitively)", () => {
    expect(validateTags([tag("Env"), tag("env")]).length).toBe(2);
    expectKmsError(() => validateTags([tag("env", "a"), tag("env", "b")]), "TagException", "Duplicate TagKey 'env'.");
  });
});
